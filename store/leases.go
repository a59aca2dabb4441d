package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Several processes ("replicas") may share one store (PostgreSQL) and any of them may receive any
// message. The inbox keeps each chat's messages in the order they became durable and hands them
// to one replica at a time:
//
//   - Inbox ids are allocated here, inside the transaction that stores the messages (a sequence
//     per platform, above every id already stored), so they are unique across replicas and give
//     the order in which the messages became durable.
//   - Every entry stored with its chat is indexed by chat, so a chat's pending entries are found
//     without reading the rest.
//   - A chat's LEASE names the replica (name and incarnation) that hands its messages to the
//     handler. A replica takes it when it stores a chat's messages and nobody holds a live lease,
//     keeps it while the chat has pending entries, and releases it in the transaction that marks
//     the chat's last entry done. Write transactions are serialized (as bbolt's are, and the
//     PostgreSQL engine's by an advisory lock), so no entry falls between a release and
//     another replica's taking.
//   - A lease is live while its holder's heartbeat (written every few seconds) is younger than
//     the caller's TTL. A lease of the caller's own name with another incarnation is dead at
//     once: one process runs per name (on bbolt the file lock guarantees it), so a process
//     restarted after a crash takes its chats back at once.
//
// Entries stored without a chat (SaveInbox, as earlier versions did) are leased together under
// one key, the chat "".
const (
	bucketInboxChats    = "inbox_chats"    // platform → nested bucket: chat NUL big-endian id → empty
	bucketInboxChatOf   = "inbox_chat_of"  // platform → nested bucket: big-endian id → chat
	bucketInboxLeases   = "inbox_leases"   // platform → nested bucket: chat (unindexedLease for "") → leaseRec
	bucketInboxReplicas = "inbox_replicas" // replica name → heartbeatRec
)

// unindexedLease is the lease key of the entries stored without a chat (chat ids contain no NUL).
const unindexedLease = "\x00"

// Lessee is a replica taking part in the inbox's leases, as of one call.
type Lessee struct {
	// Replica names the process (one process per name at a time); Incarnation is different at
	// every start of it.
	Replica, Incarnation string
	// Now is the replica's clock; a heartbeat older than TTL is dead.
	Now time.Time
	TTL time.Duration
	// Held reports the entries the replica has already taken in (queued, being handled, or left
	// in the inbox on purpose): they are not returned again. Nil holds none. It is called inside
	// the store's transaction and must not call the store.
	Held func(id int64) bool
}

func (l Lessee) check() error {
	if err := checkID("replica", l.Replica); err != nil {
		return err
	}
	if l.Incarnation == "" {
		return fmt.Errorf("%w: empty incarnation", ErrInvalid)
	}
	if l.TTL <= 0 {
		return fmt.Errorf("%w: lease TTL %v", ErrInvalid, l.TTL)
	}
	return nil
}

func (l Lessee) held(id int64) bool { return l.Held != nil && l.Held(id) }

type leaseRec struct {
	Replica     string    `json:"replica"`
	Incarnation string    `json:"incarnation"`
	Since       time.Time `json:"since"`
}

type heartbeatRec struct {
	Incarnation string    `json:"incarnation"`
	At          time.Time `json:"at"`
}

// Heartbeat records that l's replica is alive at l.Now; its leases stay live for l.TTL (as others
// count it). Written by a new incarnation, it ends the leases of the replica's earlier ones.
func (s *Store) Heartbeat(ctx context.Context, l Lessee) error {
	if err := l.check(); err != nil {
		return err
	}
	v, err := json.Marshal(heartbeatRec{Incarnation: l.Incarnation, At: utc(l.Now)})
	if err != nil {
		return err
	}
	return s.update(ctx, "heartbeat", func(tx Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(bucketInboxReplicas))
		if err != nil {
			return err
		}
		return b.Put([]byte(l.Replica), v)
	})
}

// Retire removes l's heartbeat (if it is still this incarnation's), so that its leases are dead
// at once: a replica that stops hands its chats to the others.
func (s *Store) Retire(ctx context.Context, l Lessee) error {
	if err := l.check(); err != nil {
		return err
	}
	return s.update(ctx, "retire", func(tx Tx) error {
		b := tx.Bucket([]byte(bucketInboxReplicas))
		if b == nil {
			return nil
		}
		if hb, ok := readHeartbeat(b, l.Replica); ok && hb.Incarnation == l.Incarnation {
			return b.Delete([]byte(l.Replica))
		}
		return nil
	})
}

// AcceptInbox stores updates (each with its Chat; their IDs are ignored) as pending in
// platform's inbox with new ids, unique and increasing in the order of commit, and records
// offset as the platform's confirmed offset if it is positive, in one transaction. In the same
// transaction it takes the lease of each of their chats that no live replica holds. It returns
// the ids given to updates (in their order) and, in id order, the pending entries of the chats
// whose lease l holds now that l does not hold already (l.Held): the new ones and any stored by
// other replicas meanwhile. The updates of a chat leased by another live replica are only
// stored: that replica hands them in.
func (s *Store) AcceptInbox(ctx context.Context, l Lessee, platform string, updates []InboxUpdate, offset int64) (ids []int64, take []InboxUpdate, err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if err := l.check(); err != nil {
		return nil, nil, err
	}
	if err := checkID("platform", platform); err != nil {
		return nil, nil, err
	}
	if offset < 0 {
		return nil, nil, fmt.Errorf("%w: negative inbox offset %d", ErrInvalid, offset)
	}
	for i, u := range updates {
		if err := checkID("chat", u.Chat); err != nil {
			return nil, nil, fmt.Errorf("update %d: %w", i, err)
		}
		if len(u.Data) == 0 {
			return nil, nil, fmt.Errorf("%w: update %d is empty", ErrInvalid, i)
		}
	}
	if len(updates) == 0 && offset == 0 {
		return nil, nil, nil
	}
	err = s.update(ctx, "accept inbox", func(tx Tx) error {
		ids, take = nil, nil
		pb, err := inboxBucket(tx, platform)
		if err != nil {
			return err
		}
		var chats []string
		for _, u := range updates {
			id, err := nextInboxID(pb)
			if err != nil {
				return err
			}
			if err := putEntry(tx, pb, platform, u.Chat, id, u.Data); err != nil {
				return err
			}
			ids = append(ids, id)
			if !slices.Contains(chats, u.Chat) {
				chats = append(chats, u.Chat)
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
		for _, chat := range chats {
			st, err := lease(tx, l, platform, chat)
			if err != nil {
				return err
			}
			if !st.ours && st.live {
				continue
			}
			if !st.ours {
				if err := takeLease(tx, l, platform, chat); err != nil {
					return err
				}
			}
			take = append(take, pendingOf(tx, platform, chat, l.held)...)
		}
		slices.SortFunc(take, byInboxID)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return ids, take, nil
}

// FinishInbox deletes the entries done names (by the chat whose lease they were handed in under,
// "" for entries stored without a chat; a chat may be named with no ids to be looked at) and,
// in the same transaction, for each of those chats whose lease l holds: releases the lease if
// the chat has nothing pending, or else returns its pending entries l does not hold (stored by
// other replicas), keeping the lease. A chat whose lease l does not hold (any more) is left
// alone. The entries are returned in id order. Ids that are not pending are ignored.
func (s *Store) FinishInbox(ctx context.Context, l Lessee, platform string, done map[string][]int64) ([]InboxUpdate, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := l.check(); err != nil {
		return nil, err
	}
	if err := checkID("platform", platform); err != nil {
		return nil, err
	}
	if len(done) == 0 {
		return nil, nil
	}
	chats := make([]string, 0, len(done))
	for chat := range done {
		if chat != "" {
			if err := checkID("chat", chat); err != nil {
				return nil, err
			}
		}
		chats = append(chats, chat)
	}
	slices.Sort(chats)
	var take []InboxUpdate
	err := s.update(ctx, "finish inbox", func(tx Tx) error {
		take = nil
		pb, err := inboxBucket(tx, platform)
		if err != nil {
			return err
		}
		for _, chat := range chats {
			for _, id := range done[chat] {
				if err := deleteEntry(tx, pb, platform, id); err != nil {
					return err
				}
			}
		}
		for _, chat := range chats {
			st, err := lease(tx, l, platform, chat)
			if err != nil {
				return err
			}
			if !st.ours {
				continue
			}
			if !hasPending(tx, platform, chat) {
				if err := releaseLease(tx, platform, chat); err != nil {
					return err
				}
				continue
			}
			take = append(take, pendingOf(tx, platform, chat, l.held)...)
		}
		slices.SortFunc(take, byInboxID)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return take, nil
}

// AdoptInbox hands l the chats of platform that have pending entries and no live lease (their
// replica stopped or died, or is an earlier incarnation of l's) by taking their leases, and
// returns, in id order, the pending entries of those chats and of the chats l holds already that
// l does not hold (l.Held). It writes only when there is something to take.
func (s *Store) AdoptInbox(ctx context.Context, l Lessee, platform string) ([]InboxUpdate, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := l.check(); err != nil {
		return nil, err
	}
	if err := checkID("platform", platform); err != nil {
		return nil, err
	}
	var found bool
	err := s.view(ctx, "adopt inbox", func(tx Tx) error {
		var err error
		found, err = adopt(tx, l, platform, false, nil)
		return err
	})
	if err != nil || !found {
		return nil, err
	}
	var take []InboxUpdate
	err = s.update(ctx, "adopt inbox", func(tx Tx) error {
		take = nil
		_, err := adopt(tx, l, platform, true, func(u InboxUpdate) { take = append(take, u) })
		return err
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(take, byInboxID)
	return take, nil
}

// ReleaseInbox lets go the leases of platform's chats that l holds, except those keep reports
// (called inside the store's transaction: it must not call the store), so that the other
// replicas take those chats at once: a replica whose channel of the platform closed while it
// runs on (WhatsApp's lock lost, another replica running WhatsApp now) hands in none of them.
func (s *Store) ReleaseInbox(ctx context.Context, l Lessee, platform string, keep func(chat string) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := l.check(); err != nil {
		return err
	}
	if err := checkID("platform", platform); err != nil {
		return err
	}
	return s.update(ctx, "release inbox", func(tx Tx) error {
		lb := nested(tx, bucketInboxLeases, platform)
		if lb == nil {
			return nil
		}
		var let [][]byte
		c := lb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var rec leaseRec
			if v == nil || json.Unmarshal(v, &rec) != nil || rec.Replica != l.Replica || rec.Incarnation != l.Incarnation {
				continue
			}
			chat := string(k)
			if chat == unindexedLease {
				chat = ""
			}
			if keep == nil || !keep(chat) {
				let = append(let, bytes.Clone(k))
			}
		}
		for _, k := range let {
			if err := lb.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// adopt walks platform's chats with pending entries and reports whether l has any to take; with
// write it takes the leases and passes the entries to add.
func adopt(tx Tx, l Lessee, platform string, write bool, add func(InboxUpdate)) (bool, error) {
	found := false
	visit := func(chat string) error {
		st, err := lease(tx, l, platform, chat)
		if err != nil || (st.live && !st.ours) {
			return err
		}
		pending := pendingOf(tx, platform, chat, l.held)
		if len(pending) == 0 && (st.ours || !hasPending(tx, platform, chat)) {
			return nil
		}
		found = true
		if !write {
			return nil
		}
		if !st.ours {
			if err := takeLease(tx, l, platform, chat); err != nil {
				return err
			}
		}
		for _, u := range pending {
			add(u)
		}
		return nil
	}
	for _, chat := range pendingChats(tx, platform) {
		if err := visit(chat); err != nil {
			return false, err
		}
	}
	if hasPending(tx, platform, "") {
		if err := visit(""); err != nil {
			return false, err
		}
	}
	return found, nil
}

// leaseState is a chat's lease as l sees it.
type leaseState struct {
	ours bool // l holds it
	live bool // someone holds it (l, or a replica whose heartbeat is fresh)
}

func lease(tx Tx, l Lessee, platform, chat string) (leaseState, error) {
	lb := nested(tx, bucketInboxLeases, platform)
	if lb == nil {
		return leaseState{}, nil
	}
	v := lb.Get(leaseKey(chat))
	if v == nil {
		return leaseState{}, nil
	}
	var rec leaseRec
	if err := json.Unmarshal(v, &rec); err != nil {
		return leaseState{}, fmt.Errorf("inbox lease of %s chat %q: %w", platform, chat, err)
	}
	switch {
	case rec.Replica == l.Replica && rec.Incarnation == l.Incarnation:
		return leaseState{ours: true, live: true}, nil
	case rec.Replica == l.Replica:
		return leaseState{}, nil // an earlier incarnation of l: dead
	}
	rb := tx.Bucket([]byte(bucketInboxReplicas))
	if rb == nil {
		return leaseState{}, nil
	}
	hb, ok := readHeartbeat(rb, rec.Replica)
	live := ok && hb.Incarnation == rec.Incarnation && l.Now.Sub(hb.At) < l.TTL
	return leaseState{live: live}, nil
}

func readHeartbeat(rb Bucket, name string) (heartbeatRec, bool) {
	var hb heartbeatRec
	v := rb.Get([]byte(name))
	if v == nil || json.Unmarshal(v, &hb) != nil {
		return heartbeatRec{}, false // unreadable: dead
	}
	return hb, true
}

func takeLease(tx Tx, l Lessee, platform, chat string) error {
	lb, err := createNested(tx, bucketInboxLeases, platform)
	if err != nil {
		return err
	}
	v, err := json.Marshal(leaseRec{Replica: l.Replica, Incarnation: l.Incarnation, Since: utc(l.Now)})
	if err != nil {
		return err
	}
	return lb.Put(leaseKey(chat), v)
}

func releaseLease(tx Tx, platform, chat string) error {
	if lb := nested(tx, bucketInboxLeases, platform); lb != nil {
		return lb.Delete(leaseKey(chat))
	}
	return nil
}

func leaseKey(chat string) []byte {
	if chat == "" {
		return []byte(unindexedLease)
	}
	return []byte(chat)
}

// inboxBucket is platform's inbox bucket, created if needed.
func inboxBucket(tx Tx, platform string) (Bucket, error) {
	ib, err := bucket(tx, bucketInbox)
	if err != nil {
		return nil, err
	}
	return ib.CreateBucketIfNotExists([]byte(platform))
}

// nextInboxID allocates an inbox id: above the sequence and above every id stored (entries
// numbered before ids were allocated here).
func nextInboxID(pb Bucket) (int64, error) {
	seq := pb.Sequence()
	if k, _ := pb.Cursor().Last(); len(k) == 8 {
		seq = max(seq, binary.BigEndian.Uint64(k))
	}
	seq++
	if err := pb.SetSequence(seq); err != nil {
		return 0, err
	}
	return int64(seq), nil
}

// putEntry stores an entry and, if its chat is known, indexes it by chat.
func putEntry(tx Tx, pb Bucket, platform, chat string, id int64, data []byte) error {
	// bbolt keeps the slice until the transaction commits: give it its own copy.
	if err := pb.Put(seqKey(uint64(id)), bytes.Clone(data)); err != nil {
		return err
	}
	if chat == "" {
		return nil
	}
	cb, err := createNested(tx, bucketInboxChats, platform)
	if err != nil {
		return err
	}
	ob, err := createNested(tx, bucketInboxChatOf, platform)
	if err != nil {
		return err
	}
	if old := ob.Get(seqKey(uint64(id))); old != nil && string(old) != chat {
		if err := cb.Delete(chatEntryKey(string(old), id)); err != nil {
			return err
		}
	}
	if err := cb.Put(chatEntryKey(chat, id), []byte{}); err != nil {
		return err
	}
	return ob.Put(seqKey(uint64(id)), []byte(chat))
}

// deleteEntry removes an entry and its index.
func deleteEntry(tx Tx, pb Bucket, platform string, id int64) error {
	if id < 0 {
		return nil
	}
	key := seqKey(uint64(id))
	if err := pb.Delete(key); err != nil {
		return err
	}
	ob := nested(tx, bucketInboxChatOf, platform)
	if ob == nil {
		return nil
	}
	chat := ob.Get(key)
	if chat == nil {
		return nil
	}
	if cb := nested(tx, bucketInboxChats, platform); cb != nil {
		if err := cb.Delete(chatEntryKey(string(chat), id)); err != nil {
			return err
		}
	}
	return ob.Delete(key)
}

func chatEntryKey(chat string, id int64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(chat), 0), uint64(id))
}

// pendingOf returns chat's pending entries that are not held, lowest id first; chat "" is the
// entries stored without a chat.
func pendingOf(tx Tx, platform, chat string, held func(int64) bool) []InboxUpdate {
	var out []InboxUpdate
	eachPending(tx, platform, chat, func(id int64, data []byte) bool {
		if !held(id) {
			out = append(out, InboxUpdate{ID: id, Chat: chat, Data: bytes.Clone(data)})
		}
		return true
	})
	return out
}

func hasPending(tx Tx, platform, chat string) bool {
	found := false
	eachPending(tx, platform, chat, func(int64, []byte) bool { found = true; return false })
	return found
}

// eachPending calls fn for chat's pending entries in id order until it returns false.
func eachPending(tx Tx, platform, chat string, fn func(id int64, data []byte) bool) {
	pb := nested(tx, bucketInbox, platform)
	if pb == nil {
		return
	}
	if chat == "" {
		ob := nested(tx, bucketInboxChatOf, platform)
		c := pb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != 8 || v == nil || (ob != nil && ob.Get(k) != nil) {
				continue
			}
			if !fn(int64(binary.BigEndian.Uint64(k)), v) {
				return
			}
		}
		return
	}
	cb := nested(tx, bucketInboxChats, platform)
	if cb == nil {
		return
	}
	prefix := append([]byte(chat), 0)
	c := cb.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) != len(prefix)+8 {
			continue
		}
		id := binary.BigEndian.Uint64(k[len(prefix):])
		v := pb.Get(seqKey(id))
		if v == nil {
			continue // removed by DoneInbox of an earlier version's index: not pending
		}
		if !fn(int64(id), v) {
			return
		}
	}
}

// pendingChats lists the chats with indexed pending entries.
func pendingChats(tx Tx, platform string) []string {
	cb := nested(tx, bucketInboxChats, platform)
	if cb == nil {
		return nil
	}
	var out []string
	c := cb.Cursor()
	for k, _ := c.First(); k != nil; {
		i := bytes.IndexByte(k, 0)
		if i < 0 {
			k, _ = c.Next()
			continue
		}
		out = append(out, string(k[:i]))
		// The next chat: past every key of this one (its prefix then NUL, then 0x01).
		k, _ = c.Seek(append(bytes.Clone(k[:i]), 1))
	}
	return out
}

func byInboxID(a, b InboxUpdate) int { return cmp.Compare(a.ID, b.ID) }

// nested is the bucket top → name, or nil.
func nested(tx Tx, top, name string) Bucket {
	b := tx.Bucket([]byte(top))
	if b == nil {
		return nil
	}
	return b.Bucket([]byte(name))
}

func createNested(tx Tx, top, name string) (Bucket, error) {
	b, err := tx.CreateBucketIfNotExists([]byte(top))
	if err != nil {
		return nil, err
	}
	return b.CreateBucketIfNotExists([]byte(name))
}
