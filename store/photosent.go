package store

import (
	"encoding/binary"
	"time"
)

// bucketPhotoSent: photo hash → when a message last named the photo: its time (unix nanoseconds)
// and the id of the write transaction that stored it (big-endian, 8 bytes each). Retention and
// forget decide from logs read in earlier transactions; inside the transaction that removes a
// photo they check here that no message named it meanwhile (a group forwarding an old photo is
// answered from the cache, so nothing else about the photo changes).
const bucketPhotoSent = "photo_sent"

// notePhotoSent records that r names its photos now, in r's transaction.
func notePhotoSent(tx Tx, r Record) error {
	if r.PhotoHash == "" && len(r.Album) == 0 {
		return nil
	}
	b, err := bucket(tx, bucketPhotoSent)
	if err != nil {
		return err
	}
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v, uint64(r.Time.UnixNano()))
	binary.BigEndian.PutUint64(v[8:], tx.ID())
	for i, h := range append([]string{r.PhotoHash}, r.Album...) {
		if h == "" || i > 0 && h == r.PhotoHash { // an album's first photo is its PhotoHash too
			continue
		}
		if old := b.Get([]byte(h)); len(old) == 16 && binary.BigEndian.Uint64(old) > binary.BigEndian.Uint64(v) {
			// An older message updated later: keep the later time, take the newer write.
			binary.BigEndian.PutUint64(v, binary.BigEndian.Uint64(old))
		}
		if err := b.Put([]byte(h), append([]byte(nil), v...)); err != nil {
			return err
		}
	}
	return nil
}

// photoSent returns when a message last named the photo and the transaction that stored it
// (zero if no message did since this index exists).
func photoSent(tx Tx, hash string) (time.Time, uint64) {
	b := tx.Bucket([]byte(bucketPhotoSent))
	if b == nil {
		return time.Time{}, 0
	}
	v := b.Get([]byte(hash))
	if len(v) != 16 {
		return time.Time{}, 0
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC(), binary.BigEndian.Uint64(v[8:])
}
