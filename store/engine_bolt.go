package store

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// boltEngine is the embedded engine: one bbolt file, locked by one process.
type boltEngine struct {
	db   *bolt.DB
	path string
}

func (e *boltEngine) view(_ context.Context, fn func(Tx) error) error {
	return e.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

func (e *boltEngine) update(_ context.Context, fn func(Tx) error) error {
	return e.db.Update(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

func (e *boltEngine) close() error { return e.db.Close() }

func (e *boltEngine) name() string { return e.path }

type boltTx struct{ tx *bolt.Tx }

func (t boltTx) Bucket(name []byte) Bucket { return wrapBucket(t.tx.Bucket(name)) }

func (t boltTx) CreateBucketIfNotExists(name []byte) (Bucket, error) {
	b, err := t.tx.CreateBucketIfNotExists(name)
	return wrapBucket(b), err
}

func (t boltTx) CreateBucket(name []byte) (Bucket, error) {
	b, err := t.tx.CreateBucket(name)
	return wrapBucket(b), err
}

func (t boltTx) DeleteBucket(name []byte) error { return t.tx.DeleteBucket(name) }

// ID is bbolt's transaction id: a read sees the last committed write's id, a write the next.
func (t boltTx) ID() uint64 { return uint64(t.tx.ID()) }

// wrapBucket returns nil (not a Bucket holding a nil pointer) for a missing bucket.
func wrapBucket(b *bolt.Bucket) Bucket {
	if b == nil {
		return nil
	}
	return boltBucket{b}
}

type boltBucket struct{ b *bolt.Bucket }

func (b boltBucket) Get(key []byte) []byte          { return b.b.Get(key) }
func (b boltBucket) Put(key, value []byte) error    { return b.b.Put(key, value) }
func (b boltBucket) Delete(key []byte) error        { return b.b.Delete(key) }
func (b boltBucket) Cursor() Cursor                 { return boltCursor{b.b.Cursor()} }
func (b boltBucket) Bucket(name []byte) Bucket      { return wrapBucket(b.b.Bucket(name)) }
func (b boltBucket) DeleteBucket(name []byte) error { return b.b.DeleteBucket(name) }
func (b boltBucket) NextSequence() (uint64, error)  { return b.b.NextSequence() }
func (b boltBucket) Sequence() uint64               { return b.b.Sequence() }
func (b boltBucket) SetSequence(v uint64) error     { return b.b.SetSequence(v) }

func (b boltBucket) ForEach(fn func(k, v []byte) error) error { return b.b.ForEach(fn) }

func (b boltBucket) ForEachBucket(fn func(k []byte) error) error { return b.b.ForEachBucket(fn) }

func (b boltBucket) CreateBucketIfNotExists(name []byte) (Bucket, error) {
	nb, err := b.b.CreateBucketIfNotExists(name)
	return wrapBucket(nb), err
}

func (b boltBucket) Stats() BucketStats {
	s := b.b.Stats()
	return BucketStats{KeyN: s.KeyN, Bytes: int64(s.BranchInuse + s.LeafInuse + s.InlineBucketInuse)}
}

type boltCursor struct{ c *bolt.Cursor }

func (c boltCursor) First() ([]byte, []byte)           { return c.c.First() }
func (c boltCursor) Last() ([]byte, []byte)            { return c.c.Last() }
func (c boltCursor) Next() ([]byte, []byte)            { return c.c.Next() }
func (c boltCursor) Prev() ([]byte, []byte)            { return c.c.Prev() }
func (c boltCursor) Seek(seek []byte) ([]byte, []byte) { return c.c.Seek(seek) }
func (c boltCursor) Delete() error                     { return c.c.Delete() }
