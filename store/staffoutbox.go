package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"
)

// The staff outbox: staff replies written on a replica that cannot send on the conversation's
// channel (WhatsApp's connection runs on one replica at a time), waiting for the replica that
// runs it. That replica lists a platform's pending entries, claims each one in a write
// transaction before it sends it (write transactions are serialized across replicas, so an entry
// is handed out once: at most once, even if two replicas run the channel for a moment), then
// records the outcome together with the conversation's log record. The replica that queued the
// reply reads the outcome; reading a final outcome removes the entry, and PruneStaffReplies
// removes what nobody read.
const bucketStaffOutbox = "staff_outbox" // platform → nested bucket: big-endian id → staffReplyRec

// StaffReplyState is where a queued staff reply stands.
type StaffReplyState string

// Staff reply states.
const (
	StaffReplyPending      StaffReplyState = "pending"       // waiting for the replica running its channel
	StaffReplySending      StaffReplyState = "sending"       // claimed: a replica is sending it (never handed out again)
	StaffReplyDelivered    StaffReplyState = "delivered"     // the platform took it
	StaffReplyNotDelivered StaffReplyState = "not_delivered" // the platform refused it (Reason)
)

// final reports a state that does not change any more.
func (st StaffReplyState) final() bool {
	return st == StaffReplyDelivered || st == StaffReplyNotDelivered
}

// StaffReply is a staff reply in the shared outbox.
type StaffReply struct {
	ID       uint64 // assigned by EnqueueStaffReply, increasing per platform
	Platform string
	// The chat the reply goes to (bot.ChatRef's fields).
	ChatID, ChatKind, ChatTitle string
	Text                        string // as the farmer gets it (signed already)
	Staff                       string // who wrote it
	Queued                      time.Time
	State                       StaffReplyState
	Reason                      string    // why it was not delivered (the log record's Error)
	Changed                     time.Time // when it was claimed or its outcome recorded
}

type staffReplyRec struct {
	ChatID    string          `json:"chat_id"`
	ChatKind  string          `json:"chat_kind,omitempty"`
	ChatTitle string          `json:"chat_title,omitempty"`
	Text      string          `json:"text"`
	Staff     string          `json:"staff"`
	Queued    time.Time       `json:"queued"`
	State     StaffReplyState `json:"state"`
	Reason    string          `json:"reason,omitempty"`
	Changed   time.Time       `json:"changed,omitzero"`
}

func (r staffReplyRec) reply(platform string, id uint64) StaffReply {
	return StaffReply{ID: id, Platform: platform, ChatID: r.ChatID, ChatKind: r.ChatKind, ChatTitle: r.ChatTitle,
		Text: r.Text, Staff: r.Staff, Queued: r.Queued, State: r.State, Reason: r.Reason, Changed: r.Changed}
}

// EnqueueStaffReply stores r as pending in its platform's outbox and returns its id. r.ID,
// r.State, r.Reason and r.Changed are ignored.
func (s *Store) EnqueueStaffReply(ctx context.Context, r StaffReply) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := checkIDs("platform", r.Platform, "chat id", r.ChatID); err != nil {
		return 0, err
	}
	if r.Text == "" || r.Staff == "" {
		return 0, fmt.Errorf("%w: a staff reply needs its text and its author", ErrInvalid)
	}
	v, err := json.Marshal(staffReplyRec{ChatID: r.ChatID, ChatKind: r.ChatKind, ChatTitle: r.ChatTitle,
		Text: r.Text, Staff: r.Staff, Queued: utc(r.Queued), State: StaffReplyPending})
	if err != nil {
		return 0, fmt.Errorf("%w: encode staff reply: %w", ErrInvalid, err)
	}
	var id uint64
	err = s.update(ctx, "enqueue staff reply", func(tx Tx) error {
		pb, err := createNested(tx, bucketStaffOutbox, r.Platform)
		if err != nil {
			return err
		}
		if id, err = pb.NextSequence(); err != nil {
			return err
		}
		return pb.Put(seqKey(id), v)
	})
	if err != nil {
		return 0, err
	}
	return id, nil
}

// PendingStaffReplies returns platform's pending staff replies, oldest first (none: an empty
// slice).
func (s *Store) PendingStaffReplies(ctx context.Context, platform string) ([]StaffReply, error) {
	if err := checkID("platform", platform); err != nil {
		return nil, err
	}
	return s.listStaffReplies(ctx, "pending staff replies", platform, func(rec staffReplyRec) bool {
		return rec.State == StaffReplyPending
	})
}

// QueuedStaffReplies returns the staff replies to platform's chat chatID that are still in the
// outbox, pending or being sent (not logged in the conversation yet), oldest first (none: an
// empty slice). The dashboard shows them in the conversation so that nobody writes them again.
func (s *Store) QueuedStaffReplies(ctx context.Context, platform, chatID string) ([]StaffReply, error) {
	if err := checkIDs("platform", platform, "chat id", chatID); err != nil {
		return nil, err
	}
	return s.listStaffReplies(ctx, "queued staff replies", platform, func(rec staffReplyRec) bool {
		return rec.ChatID == chatID && !rec.State.final()
	})
}

// listStaffReplies returns platform's outbox entries match picks, oldest first (none: an empty
// slice).
func (s *Store) listStaffReplies(ctx context.Context, op, platform string, match func(staffReplyRec) bool) ([]StaffReply, error) {
	out := []StaffReply{}
	err := s.view(ctx, op, func(tx Tx) error {
		pb := nested(tx, bucketStaffOutbox, platform)
		if pb == nil {
			return nil
		}
		return pb.ForEach(func(k, v []byte) error {
			id, rec, err := decodeStaffReply(k, v)
			if err != nil {
				return err
			}
			if match(rec) {
				out = append(out, rec.reply(platform, id))
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ClaimStaffReply marks platform's pending reply id as being sent (at now) and returns it: the
// caller sends it, then calls FinishStaffReply. A reply that is not pending (claimed by another
// replica, or removed) gives ErrNotFound: it is never handed out twice.
func (s *Store) ClaimStaffReply(ctx context.Context, platform string, id uint64, now time.Time) (StaffReply, error) {
	if err := checkID("platform", platform); err != nil {
		return StaffReply{}, err
	}
	var out StaffReply
	err := s.update(ctx, "claim staff reply", func(tx Tx) error {
		pb := nested(tx, bucketStaffOutbox, platform)
		if pb == nil {
			return fmt.Errorf("%w: staff reply %d", ErrNotFound, id)
		}
		rec, ok, err := getStaffReply(pb, id)
		if err != nil {
			return err
		}
		if !ok || rec.State != StaffReplyPending {
			return fmt.Errorf("%w: pending staff reply %d", ErrNotFound, id)
		}
		rec.State, rec.Changed = StaffReplySending, utc(now)
		out = rec.reply(platform, id)
		return putStaffReply(pb, id, rec)
	})
	return out, err
}

// FinishStaffReply records the outcome of platform's claimed reply id and appends log, the
// conversation's record of it (its Error says why it was not delivered, "" if it was), in one
// transaction, and returns the record's Seq. The reply's entry may be gone (pruned): the record
// is logged anyway.
func (s *Store) FinishStaffReply(ctx context.Context, platform string, id uint64, log Record) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := checkRecord(log); err != nil {
		return 0, err
	}
	if log.Platform != platform {
		return 0, fmt.Errorf("%w: the log record of a %s staff reply is for %s", ErrInvalid, platform, log.Platform)
	}
	v, err := json.Marshal(newMsgRec(log))
	if err != nil {
		return 0, fmt.Errorf("%w: encode message: %w", ErrInvalid, err)
	}
	var seq uint64
	err = s.update(ctx, "finish staff reply", func(tx Tx) error {
		if pb := nested(tx, bucketStaffOutbox, platform); pb != nil {
			rec, ok, err := getStaffReply(pb, id)
			if err != nil {
				return err
			}
			if ok {
				rec.State, rec.Reason, rec.Changed = StaffReplyDelivered, "", utc(log.Time)
				if log.Error != "" {
					rec.State, rec.Reason = StaffReplyNotDelivered, log.Error
				}
				if err := putStaffReply(pb, id, rec); err != nil {
					return err
				}
			}
		}
		seq, err = appendMessage(tx, log, v)
		return err
	})
	if err != nil {
		return 0, err
	}
	return seq, nil
}

// StaffReplyOutcome returns platform's reply id as it stands. Once its outcome is final
// (delivered or not) the entry is removed: the outcome is read once; if removing it fails, the
// final outcome is returned with the error (PruneStaffReplies removes it later). A removed or
// unknown id gives ErrNotFound.
func (s *Store) StaffReplyOutcome(ctx context.Context, platform string, id uint64) (StaffReply, error) {
	if err := checkID("platform", platform); err != nil {
		return StaffReply{}, err
	}
	var out StaffReply
	get := func(write bool) func(Tx) error {
		return func(tx Tx) error {
			pb := nested(tx, bucketStaffOutbox, platform)
			if pb == nil {
				return fmt.Errorf("%w: staff reply %d", ErrNotFound, id)
			}
			rec, ok, err := getStaffReply(pb, id)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%w: staff reply %d", ErrNotFound, id)
			}
			out = rec.reply(platform, id)
			if write && rec.State.final() {
				return pb.Delete(seqKey(id))
			}
			return nil
		}
	}
	// A read while the reply is on its way (the caller polls): no write lock taken.
	if err := s.view(ctx, "staff reply outcome", get(false)); err != nil || !out.State.final() {
		return out, err
	}
	err := s.update(ctx, "staff reply outcome", get(true))
	return out, err
}

// PruneStaffReplies removes the entries claimed or finished before before whose outcome nobody
// read (the dashboard request that queued them ended first, or the sending replica died between
// its claim and the outcome), and returns how many. Pending entries stay: they wait for the
// channel.
func (s *Store) PruneStaffReplies(ctx context.Context, before time.Time) (int, error) {
	n, _, err := s.removeStaffReplies(ctx, "prune staff replies", DefaultBatch, func(rec staffReplyRec) bool {
		return rec.State != StaffReplyPending && rec.Changed.Before(before)
	})
	return n, err
}

// sweepStaffReplies removes the staff replies queued before cutoff (the retention of messages),
// whatever their state: one still pending is older than any message kept, too old to send, and
// its text must not outlive the conversation's.
func (s *Store) sweepStaffReplies(ctx context.Context, cutoff time.Time, batch int, rep *SweepReport) error {
	n, txs, err := s.removeStaffReplies(ctx, "retention: staff outbox", batch, func(rec staffReplyRec) bool {
		return rec.Queued.Before(cutoff)
	})
	rep.StaffReplies += n
	rep.Transactions += txs
	return err
}

// removeStaffReplies removes the outbox entries match picks, at most batch per transaction: a read
// transaction finds them, a write transaction re-checks each (it may have changed since) and
// removes it. It returns how many it removed, in how many write transactions.
func (s *Store) removeStaffReplies(ctx context.Context, op string, batch int, match func(staffReplyRec) bool) (removed, txs int, err error) {
	type key struct {
		platform string
		id       uint64
	}
	for {
		var found []key
		err := s.view(ctx, op, func(tx Tx) error {
			ob := tx.Bucket([]byte(bucketStaffOutbox))
			if ob == nil {
				return nil
			}
			return ob.ForEachBucket(func(p []byte) error {
				return ob.Bucket(p).ForEach(func(k, v []byte) error {
					if len(found) >= batch {
						return nil
					}
					id, rec, err := decodeStaffReply(k, v)
					if err != nil {
						return err
					}
					if match(rec) {
						found = append(found, key{string(p), id})
					}
					return nil
				})
			})
		})
		if err != nil || len(found) == 0 {
			return removed, txs, err
		}
		n := 0
		err = s.update(ctx, op, func(tx Tx) error {
			n = 0
			for _, o := range found {
				pb := nested(tx, bucketStaffOutbox, o.platform)
				if pb == nil {
					continue
				}
				rec, ok, err := getStaffReply(pb, o.id)
				if err != nil {
					return err
				}
				if !ok || !match(rec) {
					continue
				}
				if err := pb.Delete(seqKey(o.id)); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return removed, txs, err
		}
		removed, txs = removed+n, txs+1
		if len(found) < batch {
			return removed, txs, nil
		}
	}
}

// dropStaffReplies removes the staff replies still pending for the chat chatKey names (forgotten
// on the farmer's request: they would log its conversation again). One being sent is left to
// finish.
func dropStaffReplies(tx Tx, chatKey []byte) error {
	platform, chatID, ok := bytes.Cut(chatKey, []byte{0})
	if !ok {
		return nil
	}
	pb := nested(tx, bucketStaffOutbox, string(platform))
	if pb == nil {
		return nil
	}
	var drop [][]byte
	err := pb.ForEach(func(k, v []byte) error {
		_, rec, err := decodeStaffReply(k, v)
		if err != nil {
			return err
		}
		if rec.State == StaffReplyPending && rec.ChatID == string(chatID) {
			drop = append(drop, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range drop {
		if err := pb.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func decodeStaffReply(k, v []byte) (uint64, staffReplyRec, error) {
	var rec staffReplyRec
	if len(k) != 8 {
		return 0, rec, fmt.Errorf("malformed staff outbox key %x", k)
	}
	if err := json.Unmarshal(v, &rec); err != nil {
		return 0, rec, fmt.Errorf("decode staff reply %x: %w", k, err)
	}
	return binary.BigEndian.Uint64(k), rec, nil
}

func getStaffReply(pb Bucket, id uint64) (staffReplyRec, bool, error) {
	v := pb.Get(seqKey(id))
	if v == nil {
		return staffReplyRec{}, false, nil
	}
	_, rec, err := decodeStaffReply(seqKey(id), v)
	return rec, err == nil, err
}

func putStaffReply(pb Bucket, id uint64, rec staffReplyRec) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode staff reply: %w", err)
	}
	return pb.Put(seqKey(id), v)
}
