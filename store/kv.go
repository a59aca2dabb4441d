package store

import (
	"context"
)

// The store's logic (turns, summaries, forget, retention...) is written once against a small
// ordered key-value interface with nested buckets and serializable transactions, the model of
// bbolt. Two engines implement it: bbolt (one file, one process: engine_bolt.go) and PostgreSQL
// (one table, any number of processes: engine_pg.go). Every invariant the store keeps is the same
// code on both.

// engine is a transactional ordered key-value database.
type engine interface {
	// view runs fn in a read-only transaction that sees one consistent snapshot.
	view(ctx context.Context, fn func(Tx) error) error
	// update runs fn in a read-write transaction, committed if fn returns nil. Write
	// transactions are serialized: each sees every write committed before it, as if they ran one
	// after another (across processes too).
	update(ctx context.Context, fn func(Tx) error) error
	close() error
	// name describes the database for messages (a file path, or a PostgreSQL URL without its
	// password).
	name() string
}

// Tx is a transaction: the top-level buckets.
type Tx interface {
	// Bucket returns the top-level bucket name, or nil if there is none.
	Bucket(name []byte) Bucket
	CreateBucketIfNotExists(name []byte) (Bucket, error)
	// CreateBucket creates a top-level bucket; it fails if one exists.
	CreateBucket(name []byte) (Bucket, error)
	// DeleteBucket removes a top-level bucket and everything in it.
	DeleteBucket(name []byte) error
	// ID orders transactions: a write transaction's ID is greater than that of every read
	// transaction whose snapshot does not include it, and not greater than that of one whose
	// snapshot does.
	ID() uint64
}

// Bucket is an ordered map from keys to values and nested buckets. Keys are compared byte-wise.
// A slice returned by Get or a cursor is valid only during its transaction.
type Bucket interface {
	// Get returns the value of key, or nil if there is none (or key is a nested bucket).
	Get(key []byte) []byte
	// Put sets key's value; value must not be nil.
	Put(key, value []byte) error
	// Delete removes key's value (nothing if there is none).
	Delete(key []byte) error
	// Cursor iterates over the bucket's keys in order; nested buckets appear with a nil value.
	Cursor() Cursor
	// ForEach calls fn for each key in order (a nested bucket with a nil value) until fn fails.
	// fn must not change the bucket.
	ForEach(fn func(k, v []byte) error) error
	// ForEachBucket calls fn for each nested bucket's name in order.
	ForEachBucket(fn func(k []byte) error) error
	// Bucket returns the nested bucket name, or nil.
	Bucket(name []byte) Bucket
	CreateBucketIfNotExists(name []byte) (Bucket, error)
	DeleteBucket(name []byte) error
	// NextSequence returns the bucket's next sequence number (1, 2, ...).
	NextSequence() (uint64, error)
	// Sequence is the bucket's last sequence number; SetSequence sets it (a copy of a store).
	Sequence() uint64
	SetSequence(v uint64) error
	// Stats counts what the bucket holds. On a bucket without nested buckets both engines count
	// the same keys; bbolt counts nested buckets' keys too, and only what is committed (not the
	// current write transaction's changes).
	Stats() BucketStats
}

// BucketStats is what a bucket holds.
type BucketStats struct {
	KeyN  int   // keys (values and nested buckets)
	Bytes int64 // the space its values take, as the engine counts it
}

// Cursor walks a bucket in key order. Each move returns the key and value it lands on, or a nil
// key past either end.
type Cursor interface {
	First() (k, v []byte)
	Last() (k, v []byte)
	Next() (k, v []byte)
	Prev() (k, v []byte)
	// Seek moves to the first key at or after seek.
	Seek(seek []byte) (k, v []byte)
	// Delete removes the key the cursor is on. Reposition the cursor (First, Last, Seek) before
	// moving on: where bbolt's cursor stands after a delete is not defined (on the next key).
	Delete() error
}
