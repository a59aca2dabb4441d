package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
)

// The durable inbox: updates a platform delivered that are not handled yet, and the offset that
// confirms them to the platform (Telegram's getUpdates offset). An adapter saves a batch and its
// new offset in one transaction before it sends that offset to the platform, and deletes each
// update once it is handled; whatever is still pending after a crash is handled on restart.
const (
	bucketInbox        = "inbox"         // platform → nested bucket: big-endian update id → raw update
	bucketInboxOffsets = "inbox_offsets" // platform → big-endian offset
)

// InboxUpdate is one raw platform update (its JSON, as the platform sent it) waiting to be
// handled.
type InboxUpdate struct {
	ID   int64
	Data []byte
	// Chat is the chat the update belongs to, "" if it was stored without one (by an earlier
	// version). The inbox's leases (leases.go) hand each chat's updates to one replica.
	Chat string
}

// SaveInbox stores updates as pending in platform's inbox and, if offset is positive, records it
// as the platform's confirmed offset, all in one transaction: either both are durable or neither
// is. An update already pending is replaced. Offset 0 leaves the stored offset as it is (a
// webhook has none). Ids must not be negative and data must not be empty. An update with a Chat
// is indexed by it. The caller chooses the ids: AcceptInbox, which allocates them, is the way in
// for several processes sharing the store.
func (s *Store) SaveInbox(ctx context.Context, platform string, updates []InboxUpdate, offset int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkID("platform", platform); err != nil {
		return err
	}
	if offset < 0 {
		return fmt.Errorf("%w: negative inbox offset %d", ErrInvalid, offset)
	}
	for _, u := range updates {
		if u.Chat != "" {
			if err := checkID("chat", u.Chat); err != nil {
				return err
			}
		}
		if u.ID < 0 {
			return fmt.Errorf("%w: negative update id %d", ErrInvalid, u.ID)
		}
		if len(u.Data) == 0 {
			return fmt.Errorf("%w: update %d is empty", ErrInvalid, u.ID)
		}
	}
	if len(updates) == 0 && offset == 0 {
		return nil
	}
	return s.update(ctx, "save inbox", func(tx Tx) error {
		if len(updates) > 0 {
			pb, err := inboxBucket(tx, platform)
			if err != nil {
				return err
			}
			for _, u := range updates {
				if err := putEntry(tx, pb, platform, u.Chat, u.ID, u.Data); err != nil {
					return err
				}
			}
		}
		if offset > 0 {
			ob, err := bucket(tx, bucketInboxOffsets)
			if err != nil {
				return err
			}
			if err := ob.Put([]byte(platform), seqKey(uint64(offset))); err != nil {
				return err
			}
		}
		return nil
	})
}

// PendingInbox returns platform's pending updates (with their chats), lowest id first. An empty
// inbox gives an empty slice, not ErrNotFound.
func (s *Store) PendingInbox(ctx context.Context, platform string) ([]InboxUpdate, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkID("platform", platform); err != nil {
		return nil, err
	}
	out := []InboxUpdate{}
	err := s.view(ctx, "pending inbox", func(tx Tx) error {
		ib, err := bucket(tx, bucketInbox)
		if err != nil {
			return err
		}
		pb := ib.Bucket([]byte(platform))
		if pb == nil {
			return nil
		}
		ob := nested(tx, bucketInboxChatOf, platform)
		return pb.ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("malformed inbox key %x", k)
			}
			u := InboxUpdate{ID: int64(binary.BigEndian.Uint64(k)), Data: bytes.Clone(v)}
			if ob != nil {
				u.Chat = string(ob.Get(k))
			}
			out = append(out, u)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DoneInbox deletes handled updates from platform's inbox. Ids that are not pending are ignored,
// so marking an update done twice is harmless. It leaves the chats' leases alone (FinishInbox
// is the replicas' way).
func (s *Store) DoneInbox(ctx context.Context, platform string, ids ...int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkID("platform", platform); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	return s.update(ctx, "done inbox", func(tx Tx) error {
		ib, err := bucket(tx, bucketInbox)
		if err != nil {
			return err
		}
		pb := ib.Bucket([]byte(platform))
		if pb == nil {
			return nil
		}
		for _, id := range ids {
			if err := deleteEntry(tx, pb, platform, id); err != nil {
				return err
			}
		}
		return nil
	})
}

// InboxOffset returns platform's confirmed offset, 0 if none was saved.
func (s *Store) InboxOffset(ctx context.Context, platform string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := checkID("platform", platform); err != nil {
		return 0, err
	}
	var off int64
	err := s.view(ctx, "inbox offset", func(tx Tx) error {
		ob, err := bucket(tx, bucketInboxOffsets)
		if err != nil {
			return err
		}
		v := ob.Get([]byte(platform))
		if v == nil {
			return nil
		}
		if len(v) != 8 {
			return fmt.Errorf("malformed inbox offset %x", v)
		}
		off = int64(binary.BigEndian.Uint64(v))
		return nil
	})
	if err != nil {
		return 0, err
	}
	return off, nil
}
