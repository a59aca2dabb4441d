package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Retention: the daily sweep that removes old messages and photos in small transactions, so that
// serving never waits long for the writer lock, and leaves no orphan behind (no photo, overlay or
// analysis without the others, no content id, summary or crop question naming a removed photo,
// no turn naming a removed message, no summary of a removed conversation).

// DefaultBatch bounds the records one sweep or forget transaction removes.
const DefaultBatch = 256

// scanFactor: a read transaction looks at no more than scanFactor*batch records (or chats) for
// what to remove; the write transaction that follows removes at most batch of them, re-checking
// each, and none is opened when there is nothing to remove (no writer lock taken, no fsync).
const scanFactor = 16

// RetentionPolicy says how long data is kept; zero keeps it forever.
type RetentionPolicy struct {
	// Photos: a photo (with its analysis and overlay) analysed longer ago than this and not sent
	// again within it is removed, unless staff corrected or confirmed its diagnosis (training
	// data).
	Photos time.Duration
	// Messages: a logged message older than this is removed (with its turn); a conversation left
	// without messages loses its summary and staff action log (the chat's preferences stay).
	Messages time.Duration
	// Batch bounds the records removed per transaction (DefaultBatch).
	Batch int
}

// SweepReport counts what a sweep removed.
type SweepReport struct {
	Messages      int // logged messages
	Turns         int // turn records of removed inbound messages
	StaffActions  int // staff action log entries
	StaffReplies  int // staff replies queued in the staff outbox (another replica sends them)
	Conversations int // conversations left without messages (summary removed)
	Photos        int // photos with their analysis and overlay
	ContentIDs    int // platform content ids of removed photos
	CropQuestions int // open crop questions about removed photos
	Summaries     int // summaries whose last photo was removed (the photo link cleared)
	Transactions  int // write transactions used
}

// Sweep removes what p says is too old at now, in transactions of at most p.Batch removals. It
// stops early with ctx's error; what was removed stays removed, and the next sweep goes on.
func (s *Store) Sweep(ctx context.Context, p RetentionPolicy, now time.Time) (SweepReport, error) {
	var rep SweepReport
	batch := p.Batch
	if batch <= 0 {
		batch = DefaultBatch
	}
	if p.Messages > 0 {
		cutoff := now.Add(-p.Messages)
		if err := s.sweepMessages(ctx, cutoff, batch, &rep); err != nil {
			return rep, err
		}
		if err := s.sweepStaffActions(ctx, cutoff, batch, &rep); err != nil {
			return rep, err
		}
		if err := s.sweepStaffReplies(ctx, cutoff, batch, &rep); err != nil {
			return rep, err
		}
	}
	if p.Photos > 0 {
		cutoff := now.Add(-p.Photos)
		recent, err := s.recentPhotos(ctx, cutoff, batch)
		if err != nil {
			return rep, err
		}
		removed, err := s.sweepPhotos(ctx, cutoff, recent, batch, &rep)
		if err != nil {
			return rep, err
		}
		// With the photos a sweep cut short removed without their references.
		if err := s.view(ctx, "retention: photos left with references", func(tx Tx) error {
			if b := tx.Bucket([]byte(bucketRefsPending)); b != nil {
				return b.ForEach(func(k, _ []byte) error { removed[string(k)] = true; return nil })
			}
			return nil
		}); err != nil {
			return rep, err
		}
		if err := s.dropPhotoRefs(ctx, removed, batch, &rep); err != nil {
			return rep, err
		}
		if err := s.clearPending(ctx, bucketRefsPending, removed, batch, &rep.Transactions); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// timed decodes the time of a message or staff action record.
type timed struct {
	Time time.Time `json:"time"`
}

// sweepLog removes, from each nested bucket (one per chat) of the top-level bucket name, the
// leading records older than cutoff: a read transaction finds at most batch (visiting at most
// scanFactor*batch chats), a write transaction removes them. del is called in that transaction
// for each record before it is removed; emptied for each chat left empty, whose bucket is then
// removed.
func (s *Store) sweepLog(ctx context.Context, name string, cutoff time.Time, batch int, rep *SweepReport,
	del func(tx Tx, chatKey, k, v []byte) error, emptied func(tx Tx, chatKey []byte) error) (int, error) {
	type chatDels struct{ chat, from []byte } // delete the leading old records up to and including from
	old := func(v []byte) (bool, error) {
		var t timed
		if err := json.Unmarshal(v, &t); err != nil {
			return false, fmt.Errorf("decode record of %q: %w", name, err)
		}
		return t.Time.Before(cutoff), nil
	}
	var resume []byte
	total := 0
	for done := false; !done; {
		var todo []chatDels
		err := s.view(ctx, "retention: read "+name, func(tx Tx) error {
			todo = nil
			top, err := bucket(tx, name)
			if err != nil {
				return err
			}
			c := top.Cursor()
			k, v := c.First()
			if resume != nil {
				k, v = c.Seek(resume)
			}
			n, visited := 0, 0
			for ; k != nil && n < batch && visited < scanFactor*batch; k, v = c.Next() {
				if v != nil {
					continue // not a chat's bucket
				}
				visited++
				var last []byte
				cc := top.Bucket(k).Cursor()
				for rk, rv := cc.First(); rk != nil && n < batch; rk, rv = cc.Next() {
					isOld, err := old(rv)
					if err != nil {
						return err
					}
					if !isOld {
						break // the rest is newer (logs are appended in time order)
					}
					last, n = rk, n+1
				}
				if last != nil {
					todo = append(todo, chatDels{bytes.Clone(k), bytes.Clone(last)})
				}
			}
			if n >= batch && len(todo) > 0 {
				k = todo[len(todo)-1].chat // it may have more: visit it again
			}
			done, resume = k == nil, bytes.Clone(k)
			return nil
		})
		if err != nil || len(todo) == 0 {
			if err != nil {
				return total, err
			}
			continue
		}
		removed := 0
		err = s.update(ctx, "retention: "+name, func(tx Tx) error {
			removed = 0
			top, err := bucket(tx, name)
			if err != nil {
				return err
			}
			for _, cd := range todo {
				cb := top.Bucket(cd.chat)
				if cb == nil {
					continue
				}
				var dels [][]byte
				cc := cb.Cursor()
				for rk, rv := cc.First(); rk != nil && bytes.Compare(rk, cd.from) <= 0; rk, rv = cc.Next() {
					isOld, err := old(rv)
					if err != nil {
						return err
					}
					if !isOld {
						break
					}
					if err := del(tx, cd.chat, rk, rv); err != nil {
						return err
					}
					dels = append(dels, bytes.Clone(rk))
				}
				for _, d := range dels {
					if err := cb.Delete(d); err != nil {
						return err
					}
				}
				removed += len(dels)
				if first, _ := cb.Cursor().First(); first == nil {
					if err := top.DeleteBucket(cd.chat); err != nil {
						return err
					}
					if err := emptied(tx, cd.chat); err != nil {
						return err
					}
				}
			}
			rep.Transactions++
			return nil
		})
		if err != nil {
			return total, err
		}
		total += removed
	}
	return total, nil
}

func (s *Store) sweepMessages(ctx context.Context, cutoff time.Time, batch int, rep *SweepReport) error {
	n, err := s.sweepLog(ctx, bucketMessages, cutoff, batch, rep,
		func(tx Tx, chatKey, _, v []byte) error {
			gone, err := deleteTurnOf(tx, chatKey, v)
			if gone {
				rep.Turns++
			}
			return err
		},
		func(tx Tx, chatKey []byte) error {
			rep.Conversations++
			return dropConversation(tx, chatKey)
		})
	rep.Messages += n
	return err
}

func (s *Store) sweepStaffActions(ctx context.Context, cutoff time.Time, batch int, rep *SweepReport) error {
	n, err := s.sweepLog(ctx, bucketStaffActions, cutoff, batch, rep,
		func(Tx, []byte, []byte, []byte) error { return nil },
		func(Tx, []byte) error { return nil })
	rep.StaffActions += n
	return err
}

// deleteTurnOf removes the turn of the logged message v of chatKey if it is an inbound message
// with an id.
func deleteTurnOf(tx Tx, chatKey, v []byte) (bool, error) {
	var m msgRec
	if err := json.Unmarshal(v, &m); err != nil {
		return false, fmt.Errorf("decode message: %w", err)
	}
	if m.Direction != Inbound || m.MessageID == "" {
		return false, nil
	}
	tb, err := bucket(tx, bucketTurns)
	if err != nil {
		return false, err
	}
	key := append(append(bytes.Clone(chatKey), 0), m.MessageID...)
	if tb.Get(key) == nil {
		return false, nil
	}
	return true, tb.Delete(key)
}

// dropConversation removes a conversation's summary, its index entry and its staff action log
// (its message log is gone).
func dropConversation(tx Tx, chatKey []byte) error {
	sb, sum, found, err := summaryOf(tx, chatKey)
	if err != nil {
		return err
	}
	if found {
		ib, err := bucket(tx, bucketSummaryIndex)
		if err != nil {
			return err
		}
		if err := ib.Delete(summaryIndexKey(sum.Last, chatKey)); err != nil {
			return err
		}
		if err := sb.Delete(chatKey); err != nil {
			return err
		}
	}
	return dropStaffActions(tx, chatKey)
}

// dropStaffActions removes a conversation's staff action log, if it has one.
func dropStaffActions(tx Tx, chatKey []byte) error {
	ab, err := bucket(tx, bucketStaffActions)
	if err != nil {
		return err
	}
	if ab.Bucket(chatKey) != nil {
		return ab.DeleteBucket(chatKey)
	}
	return nil
}

// recentPhotos returns the photos that messages sent at or after cutoff name (read from the end
// of each chat's log), in read transactions of at most batch chats.
func (s *Store) recentPhotos(ctx context.Context, cutoff time.Time, batch int) (map[string]bool, error) {
	recent := map[string]bool{}
	err := s.eachChatLog(ctx, batch, func(_ []byte, cb Bucket) error {
		c := cb.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var m msgRec
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("decode message: %w", err)
			}
			if m.Time.Before(cutoff) {
				return nil
			}
			notePhotos(recent, m)
		}
		return nil
	})
	return recent, err
}

// notePhotos adds the photos a message names to set.
func notePhotos(set map[string]bool, m msgRec) {
	if m.PhotoHash != "" {
		set[m.PhotoHash] = true
	}
	for _, h := range m.Album {
		set[h] = true
	}
}

// eachChatLog calls fn with every chat's message log, in read transactions of at most batch
// chats each.
func (s *Store) eachChatLog(ctx context.Context, batch int, fn func(chatKey []byte, cb Bucket) error) error {
	var resume []byte
	for done := false; !done; {
		err := s.view(ctx, "read chat logs", func(tx Tx) error {
			mb, err := bucket(tx, bucketMessages)
			if err != nil {
				return err
			}
			c := mb.Cursor()
			k, v := c.First()
			if resume != nil {
				k, v = c.Seek(resume)
			}
			for n := 0; k != nil; k, v = c.Next() {
				if n == batch {
					resume = bytes.Clone(k)
					return nil
				}
				if v != nil {
					continue
				}
				n++
				if err := fn(k, mb.Bucket(k)); err != nil {
					return err
				}
			}
			done = true
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// sweepPhotos removes the photos analysed before cutoff that recent does not name and staff did
// not correct: a read transaction finds at most batch (of scanFactor*batch analyses), a write
// transaction checks and removes them. It returns the removed hashes.
func (s *Store) sweepPhotos(ctx context.Context, cutoff time.Time, recent map[string]bool, batch int, rep *SweepReport) (map[string]bool, error) {
	expiredIn := func(tx Tx, k, v []byte) (bool, error) {
		var rec analysisRec
		if err := json.Unmarshal(v, &rec); err != nil {
			return false, fmt.Errorf("decode analysis of %s: %w", k, err)
		}
		corr, err := bucket(tx, bucketCorrections)
		if err != nil {
			return false, err
		}
		// recent is from logs read before; photoSent sees a message that named it since.
		sent, _ := photoSent(tx, string(k))
		return rec.CreatedAt.Before(cutoff) && !recent[string(k)] && sent.Before(cutoff) && corr.Get(k) == nil, nil
	}
	removed := map[string]bool{}
	var resume []byte
	for done := false; !done; {
		var expired []string
		err := s.view(ctx, "retention: read photos", func(tx Tx) error {
			expired = nil
			ab, err := bucket(tx, bucketAnalyses)
			if err != nil {
				return err
			}
			c := ab.Cursor()
			k, v := c.First()
			if resume != nil {
				k, v = c.Seek(resume)
			}
			for seen := 0; k != nil && seen < scanFactor*batch && len(expired) < batch; k, v = c.Next() {
				seen++
				ok, err := expiredIn(tx, k, v)
				if err != nil {
					return err
				}
				if ok {
					expired = append(expired, string(k))
				}
			}
			done, resume = k == nil, bytes.Clone(k)
			return nil
		})
		if err != nil {
			return removed, err
		}
		if len(expired) == 0 {
			continue
		}
		var gone []string
		err = s.update(ctx, "retention: photos", func(tx Tx) error {
			gone = gone[:0]
			ab, err := bucket(tx, bucketAnalyses)
			if err != nil {
				return err
			}
			pb, err := bucket(tx, bucketRefsPending)
			if err != nil {
				return err
			}
			for _, h := range expired {
				v := ab.Get([]byte(h))
				if v == nil {
					continue
				}
				ok, err := expiredIn(tx, []byte(h), v) // a staff correction may have come meanwhile
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				if err := deletePhoto(tx, h); err != nil {
					return err
				}
				// Durable with the removal: a sweep cut short before dropPhotoRefs leaves the
				// references for the next one (bucketRefsPending).
				if err := pb.Put([]byte(h), nil); err != nil {
					return err
				}
				gone = append(gone, h)
			}
			rep.Transactions++
			return nil
		})
		if err != nil {
			return removed, err
		}
		for _, h := range gone { // counted once committed
			removed[h] = true
		}
		rep.Photos += len(gone)
	}
	return removed, nil
}

// deletePhoto removes a photo's bytes, metadata, analysis and overlay.
func deletePhoto(tx Tx, hash string) error {
	for _, name := range []string{bucketPhotos, bucketPhotoMeta, bucketAnalyses, bucketOverlays, bucketPhotoSent} {
		b, err := bucket(tx, name)
		if err != nil {
			return err
		}
		if err := b.Delete([]byte(hash)); err != nil {
			return err
		}
	}
	return nil
}

// dropPhotoRefs removes what names a removed photo: its content ids and the open crop questions
// about it, and clears it as a conversation's last photo (the class shown stays). Each index is
// read in transactions of at most batch entries.
func (s *Store) dropPhotoRefs(ctx context.Context, removed map[string]bool, batch int, rep *SweepReport) error {
	if len(removed) == 0 {
		return nil
	}
	n, err := s.rewriteEach(ctx, bucketContentIDs, batch, rep, func(_, v []byte) ([]byte, bool, error) {
		return nil, removed[string(v)], nil
	})
	rep.ContentIDs += n
	if err != nil {
		return err
	}
	n, err = s.rewriteEach(ctx, bucketCropQuestions, batch, rep, func(_, v []byte) ([]byte, bool, error) {
		var q cropQuestionRec
		if err := json.Unmarshal(v, &q); err != nil {
			return nil, false, fmt.Errorf("decode crop question: %w", err)
		}
		return nil, removed[q.PhotoHash], nil
	})
	rep.CropQuestions += n
	if err != nil {
		return err
	}
	n, err = s.rewriteEach(ctx, bucketSummaries, batch, rep, func(_, v []byte) ([]byte, bool, error) {
		var sum summaryRec
		if err := json.Unmarshal(v, &sum); err != nil {
			return nil, false, fmt.Errorf("decode summary: %w", err)
		}
		if !removed[sum.PhotoHash] {
			return nil, false, nil
		}
		sum.PhotoHash = ""
		nv, err := json.Marshal(sum)
		return nv, false, err
	})
	rep.Summaries += n
	return err
}

// rewriteEach visits every key of a top-level bucket and removes it (fn says drop) or replaces its
// value (fn returns one): a read transaction finds at most batch keys to change (of
// scanFactor*batch), a write transaction calls fn again on each and changes it. It returns how
// many keys it changed.
func (s *Store) rewriteEach(ctx context.Context, name string, batch int, rep *SweepReport, fn func(k, v []byte) (nv []byte, drop bool, err error)) (int, error) {
	var resume []byte
	total := 0
	for done := false; !done; {
		var keys [][]byte
		err := s.view(ctx, "read "+name, func(tx Tx) error {
			keys = nil
			b, err := bucket(tx, name)
			if err != nil {
				return err
			}
			c := b.Cursor()
			k, v := c.First()
			if resume != nil {
				k, v = c.Seek(resume)
			}
			for seen := 0; k != nil && seen < scanFactor*batch && len(keys) < batch; k, v = c.Next() {
				seen++
				if v == nil {
					continue // a nested bucket
				}
				nv, drop, err := fn(k, v)
				if err != nil {
					return err
				}
				if drop || nv != nil {
					keys = append(keys, bytes.Clone(k))
				}
			}
			done, resume = k == nil, bytes.Clone(k)
			return nil
		})
		if err != nil {
			return total, err
		}
		if len(keys) == 0 {
			continue
		}
		n := 0
		err = s.update(ctx, "rewrite "+name, func(tx Tx) error {
			n = 0
			b, err := bucket(tx, name)
			if err != nil {
				return err
			}
			for _, k := range keys {
				v := b.Get(k)
				if v == nil {
					continue
				}
				nv, drop, err := fn(k, v) // again: it may have changed meanwhile
				switch {
				case err != nil:
					return err
				case drop:
					err = b.Delete(k)
				case nv != nil:
					err = b.Put(k, nv)
				default:
					continue
				}
				if err != nil {
					return err
				}
				n++
			}
			rep.Transactions++
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// bucketRefsPending: photo hash → nothing. Photos a sweep removed whose references (content ids,
// crop questions, summary links) are not yet removed: noted in the transaction that removes the
// photo, cleared once dropPhotoRefs ran, so that a sweep cut short is finished by the next.
const bucketRefsPending = "refs_pending"

// clearPending removes done from the pending bucket name, in transactions of at most batch,
// counting them in *txs.
func (s *Store) clearPending(ctx context.Context, name string, done map[string]bool, batch int, txs *int) error {
	hashes := slices.Sorted(maps.Keys(done))
	for len(hashes) > 0 {
		part := hashes[:min(batch, len(hashes))]
		err := s.update(ctx, "clear "+name, func(tx Tx) error {
			b, err := bucket(tx, name)
			if err != nil {
				return err
			}
			for _, h := range part {
				if err := b.Delete([]byte(h)); err != nil {
					return err
				}
			}
			*txs++
			return nil
		})
		if err != nil {
			return err
		}
		hashes = hashes[len(part):]
	}
	return nil
}
