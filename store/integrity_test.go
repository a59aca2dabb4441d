package store

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
)

// checkNoOrphans walks every bucket and fails the test on anything that names what is gone: a
// photo, its metadata or overlay without an analysis; a content id, crop question, correction or
// conversation summary naming a photo without one; an index entry without its summary or a
// summary without its entry; a turn whose message is not in its chat's log; a staff action log
// without a conversation. It also runs bbolt's consistency check.
func checkNoOrphans(t *testing.T, s *Store) {
	t.Helper()
	if err := s.Check(context.Background()); err != nil {
		t.Errorf("consistency check: %v", err)
	}
	err := s.eng.view(context.Background(), func(tx Tx) error {
		for _, name := range []string{bucketForgetPending, bucketRefsPending} {
			if pb := tx.Bucket([]byte(name)); pb != nil {
				_ = pb.ForEach(func(k, _ []byte) error {
					t.Errorf("photo %s still in %s after the forget or sweep finished", k, name)
					return nil
				})
			}
		}
		ab := tx.Bucket([]byte(bucketAnalyses))
		analysed := func(h []byte) bool { return len(h) > 0 && ab.Get(h) != nil }
		for _, name := range []string{bucketPhotos, bucketPhotoMeta, bucketOverlays, bucketCorrections} {
			_ = tx.Bucket([]byte(name)).ForEach(func(k, _ []byte) error {
				if !analysed(k) {
					t.Errorf("%s: %s without an analysis", name, k)
				}
				return nil
			})
		}
		_ = tx.Bucket([]byte(bucketContentIDs)).ForEach(func(k, v []byte) error {
			if !analysed(v) {
				t.Errorf("content id %q names photo %s without an analysis", k, v)
			}
			return nil
		})
		_ = tx.Bucket([]byte(bucketCropQuestions)).ForEach(func(k, v []byte) error {
			var q cropQuestionRec
			if err := json.Unmarshal(v, &q); err != nil || !analysed([]byte(q.PhotoHash)) {
				t.Errorf("crop question in %q names photo %q without an analysis (%v)", k, q.PhotoHash, err)
			}
			return nil
		})
		sb, ib := tx.Bucket([]byte(bucketSummaries)), tx.Bucket([]byte(bucketSummaryIndex))
		_ = sb.ForEach(func(k, v []byte) error {
			var sum summaryRec
			if err := json.Unmarshal(v, &sum); err != nil {
				t.Errorf("summary %q: %v", k, err)
				return nil
			}
			if sum.PhotoHash != "" && !analysed([]byte(sum.PhotoHash)) {
				t.Errorf("summary %q names photo %s without an analysis", k, sum.PhotoHash)
			}
			if ib.Get(summaryIndexKey(sum.Last, k)) == nil {
				t.Errorf("summary %q has no index entry", k)
			}
			return nil
		})
		_ = ib.ForEach(func(k, _ []byte) error {
			if len(k) <= 8 {
				t.Errorf("malformed index key %x", k)
				return nil
			}
			v := sb.Get(k[8:])
			var sum summaryRec
			if v == nil || json.Unmarshal(v, &sum) != nil || !bytes.Equal(summaryIndexKey(sum.Last, k[8:]), k) {
				t.Errorf("index entry %q without its summary", k)
			}
			return nil
		})
		mb := tx.Bucket([]byte(bucketMessages))
		_ = tx.Bucket([]byte(bucketTurns)).ForEach(func(k, v []byte) error {
			var turn turnRec
			if err := json.Unmarshal(v, &turn); err != nil {
				t.Errorf("turn %q: %v", k, err)
				return nil
			}
			parts := bytes.SplitN(k, []byte{0}, 3)
			if len(parts) != 3 {
				t.Errorf("malformed turn key %q", k)
				return nil
			}
			if turn.Forgotten {
				if turn.Seq != 0 || !turn.Done {
					t.Errorf("forgotten turn %q keeps %+v, want only done", k, turn)
				}
				return nil // a tombstone: the message is gone, its turn answers a redelivery
			}
			cb := mb.Bucket(compositeKey(string(parts[0]), string(parts[1])))
			if cb == nil || cb.Get(seqKey(turn.Seq)) == nil {
				t.Errorf("turn %q names message %d, not in the log", k, turn.Seq)
			}
			return nil
		})
		_ = tx.Bucket([]byte(bucketStaffActions)).ForEachBucket(func(k []byte) error {
			if sb.Get(k) == nil {
				t.Errorf("staff action log of %q without a conversation", k)
			}
			return nil
		})
		return mb.ForEachBucket(func(k []byte) error {
			if first, _ := mb.Bucket(k).Cursor().First(); first == nil {
				t.Errorf("empty message log %q left", k)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// logged returns every logged message of every chat.
func logged(t *testing.T, s *Store) []Record {
	t.Helper()
	var out []Record
	err := s.eng.view(context.Background(), func(tx Tx) error {
		mb := tx.Bucket([]byte(bucketMessages))
		return mb.ForEachBucket(func(ck []byte) error {
			platform, chat, _ := bytes.Cut(ck, []byte{0})
			return mb.Bucket(ck).ForEach(func(k, v []byte) error {
				r, err := decodeMessage(string(platform), string(chat), k, v)
				out = append(out, r)
				return err
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// has reports whether bucket name holds key.
func has(t *testing.T, s *Store, name string, key []byte) bool {
	t.Helper()
	found := false
	if err := s.eng.view(context.Background(), func(tx Tx) error {
		found = tx.Bucket([]byte(name)).Get(key) != nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return found
}
