package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Retention: the daily sweep that removes old messages and photos in small transactions, so that
// serving never waits long for the writer lock, and leaves no orphan behind (no photo, overlay or
// analysis without the others, no content id, summary or crop question naming a removed photo,
// no turn naming a removed message, no summary of a removed conversation).

// DefaultBatch bounds the records one sweep or forget transaction removes.
const DefaultBatch = 256

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
		if err := s.dropPhotoRefs(ctx, removed, batch, &rep); err != nil {
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
// leading records older than cutoff, at most batch per transaction. del is called in the
// transaction for each record before it is removed; emptied for each chat left empty, whose
// bucket is then removed.
func (s *Store) sweepLog(ctx context.Context, name string, cutoff time.Time, batch int, rep *SweepReport,
	del func(tx *bolt.Tx, chatKey, k, v []byte) error, emptied func(tx *bolt.Tx, chatKey []byte) error) (int, error) {
	var resume []byte
	total := 0
	for done := false; !done; {
		err := s.update(ctx, "retention: "+name, func(tx *bolt.Tx) error {
			top, err := bucket(tx, name)
			if err != nil {
				return err
			}
			n := 0
			var empty [][]byte
			c := top.Cursor()
			k, v := c.First()
			if resume != nil {
				k, v = c.Seek(resume)
			}
			for ; k != nil; k, v = c.Next() {
				if v != nil {
					continue // not a chat's bucket
				}
				cb := top.Bucket(k)
				var dels [][]byte
				cc := cb.Cursor()
				rk, rv := cc.First()
				for ; rk != nil && n+len(dels) < batch; rk, rv = cc.Next() {
					var t timed
					if err := json.Unmarshal(rv, &t); err != nil {
						return fmt.Errorf("decode record %x of %q: %w", rk, k, err)
					}
					if !t.Time.Before(cutoff) {
						break // the rest is newer (logs are appended in time order)
					}
					if err := del(tx, k, rk, rv); err != nil {
						return err
					}
					dels = append(dels, bytes.Clone(rk))
				}
				for _, d := range dels {
					if err := cb.Delete(d); err != nil {
						return err
					}
				}
				n += len(dels)
				if rk == nil {
					empty = append(empty, bytes.Clone(k))
				}
				if n >= batch {
					resume = bytes.Clone(k) // this chat may have more
					break
				}
			}
			if k == nil {
				done = true
			}
			for _, ck := range empty {
				if err := top.DeleteBucket(ck); err != nil {
					return err
				}
				if err := emptied(tx, ck); err != nil {
					return err
				}
			}
			total += n
			rep.Transactions++
			return nil
		})
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (s *Store) sweepMessages(ctx context.Context, cutoff time.Time, batch int, rep *SweepReport) error {
	n, err := s.sweepLog(ctx, bucketMessages, cutoff, batch, rep,
		func(tx *bolt.Tx, chatKey, _, v []byte) error {
			gone, err := deleteTurnOf(tx, chatKey, v)
			if gone {
				rep.Turns++
			}
			return err
		},
		func(tx *bolt.Tx, chatKey []byte) error {
			rep.Conversations++
			return dropConversation(tx, chatKey)
		})
	rep.Messages += n
	return err
}

func (s *Store) sweepStaffActions(ctx context.Context, cutoff time.Time, batch int, rep *SweepReport) error {
	n, err := s.sweepLog(ctx, bucketStaffActions, cutoff, batch, rep,
		func(*bolt.Tx, []byte, []byte, []byte) error { return nil },
		func(*bolt.Tx, []byte) error { return nil })
	rep.StaffActions += n
	return err
}

// deleteTurnOf removes the turn of the logged message v of chatKey if it is an inbound message
// with an id.
func deleteTurnOf(tx *bolt.Tx, chatKey, v []byte) (bool, error) {
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
func dropConversation(tx *bolt.Tx, chatKey []byte) error {
	sb, err := bucket(tx, bucketSummaries)
	if err != nil {
		return err
	}
	if v := sb.Get(chatKey); v != nil {
		var sum summaryRec
		if err := json.Unmarshal(v, &sum); err != nil {
			return fmt.Errorf("decode summary: %w", err)
		}
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
	err := s.eachChatLog(ctx, batch, func(_ []byte, cb *bolt.Bucket) error {
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
func (s *Store) eachChatLog(ctx context.Context, batch int, fn func(chatKey []byte, cb *bolt.Bucket) error) error {
	var resume []byte
	for done := false; !done; {
		err := s.view(ctx, "read chat logs", func(tx *bolt.Tx) error {
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
// not correct, checking at most batch analyses per transaction. It returns the removed hashes.
func (s *Store) sweepPhotos(ctx context.Context, cutoff time.Time, recent map[string]bool, batch int, rep *SweepReport) (map[string]bool, error) {
	removed := map[string]bool{}
	var resume []byte
	for done := false; !done; {
		var expired []string
		err := s.update(ctx, "retention: photos", func(tx *bolt.Tx) error {
			expired = expired[:0]
			ab, err := bucket(tx, bucketAnalyses)
			if err != nil {
				return err
			}
			corr, err := bucket(tx, bucketCorrections)
			if err != nil {
				return err
			}
			c := ab.Cursor()
			k, v := c.First()
			if resume != nil {
				k, v = c.Seek(resume)
			}
			for n := 0; k != nil; k, v = c.Next() {
				if n == batch {
					resume = bytes.Clone(k)
					break
				}
				n++
				var rec analysisRec
				if err := json.Unmarshal(v, &rec); err != nil {
					return fmt.Errorf("decode analysis of %s: %w", k, err)
				}
				if rec.CreatedAt.Before(cutoff) && !recent[string(k)] && corr.Get(k) == nil {
					expired = append(expired, string(k))
				}
			}
			done = k == nil
			for _, h := range expired {
				if err := deletePhoto(tx, h); err != nil {
					return err
				}
			}
			rep.Transactions++
			return nil
		})
		if err != nil {
			return removed, err
		}
		for _, h := range expired { // counted once committed
			removed[h] = true
		}
		rep.Photos += len(expired)
	}
	return removed, nil
}

// deletePhoto removes a photo's bytes, metadata, analysis and overlay.
func deletePhoto(tx *bolt.Tx, hash string) error {
	for _, name := range []string{bucketPhotos, bucketPhotoMeta, bucketAnalyses, bucketOverlays} {
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

// rewriteEach visits every key of a top-level bucket, at most batch per write transaction, and
// removes it (fn says drop) or replaces its value (fn returns one). It returns how many keys it
// changed.
func (s *Store) rewriteEach(ctx context.Context, name string, batch int, rep *SweepReport, fn func(k, v []byte) (nv []byte, drop bool, err error)) (int, error) {
	var resume []byte
	total := 0
	for done := false; !done; {
		n := 0
		err := s.update(ctx, "rewrite "+name, func(tx *bolt.Tx) error {
			n = 0
			b, err := bucket(tx, name)
			if err != nil {
				return err
			}
			type change struct{ k, v []byte }
			var changes []change
			c := b.Cursor()
			k, v := c.First()
			if resume != nil {
				k, v = c.Seek(resume)
			}
			for seen := 0; k != nil; k, v = c.Next() {
				if seen == batch {
					resume = bytes.Clone(k)
					break
				}
				seen++
				if v == nil {
					continue // a nested bucket
				}
				nv, drop, err := fn(k, v)
				if err != nil {
					return err
				}
				if drop || nv != nil {
					changes = append(changes, change{bytes.Clone(k), nv})
				}
			}
			done = k == nil
			for _, ch := range changes {
				var err error
				if ch.v == nil {
					err = b.Delete(ch.k)
				} else {
					err = b.Put(ch.k, ch.v)
				}
				if err != nil {
					return err
				}
			}
			n = len(changes)
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
