package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"iter"
	"slices"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Moving a store between engines (bbolt ↔ PostgreSQL, `cropshield migrate`): every record of the
// store lives in the key space of kv.go, so a store is copied by copying its buckets (nested at
// any depth), their keys and values, and each bucket's sequence; and a copy is checked by a
// digest of all of them, computed the same way on either engine.

// Errors of Copy. Callers test them with errors.Is.
var (
	// ErrNotEmpty reports a copy's destination that holds data (see Copy for what empty means).
	ErrNotEmpty = errors.New("store: the destination is not empty")
	// ErrSchemaMismatch reports a store whose schema version is not this build's.
	ErrSchemaMismatch = errors.New("store: schema version differs from this build's")
	// ErrMismatch reports a copy that differs from its source.
	ErrMismatch = errors.New("store: the copy differs from its source")
)

// Default bounds of one write transaction of Copy.
const (
	defaultCopyTxKeys  = 1000
	defaultCopyTxBytes = 16 << 20
)

// Digest sums up a store's content: a SHA-256 over every record in order, and counts per
// top-level bucket. Two stores hold the same data exactly when their digests are equal, whatever
// their engines.
//
// The records are, depth first in byte order of the names and keys: each bucket (its path from
// the top-level bucket, and its sequence) and each value (its bucket's path, its key and its
// value), every field length-prefixed so that no two different stores hash the same bytes. An
// empty top-level bucket with sequence 0 is left out, as if missing (Open creates them).
type Digest struct {
	Sum     [sha256.Size]byte
	Buckets []BucketCount // each top-level bucket not empty, in byte order of names
}

// BucketCount is what a top-level bucket holds, nested buckets included.
type BucketCount struct {
	Name     string
	Sequence uint64 // the top-level bucket's own sequence
	Buckets  int    // nested buckets, at any depth
	Keys     int    // values (keys that are not buckets), at any depth
	Bytes    int64  // the lengths of those keys and values
}

// String is the hexadecimal SHA-256.
func (d Digest) String() string { return hex.EncodeToString(d.Sum[:]) }

// Total adds up the buckets' counts (Name and Sequence are empty).
func (d Digest) Total() BucketCount {
	var t BucketCount
	for _, b := range d.Buckets {
		t.Buckets += b.Buckets
		t.Keys += b.Keys
		t.Bytes += b.Bytes
	}
	return t
}

// Equal reports whether d and o have the same sum and counts.
func (d Digest) Equal(o Digest) bool {
	return d.Sum == o.Sum && slices.Equal(d.Buckets, o.Buckets)
}

// CopyOptions bounds Copy's write transactions and reports its progress.
type CopyOptions struct {
	// MaxTxKeys is the most values and buckets written per transaction (0: 1,000).
	MaxTxKeys int
	// MaxTxBytes is the most key and value bytes written per transaction (0: 16 MiB); a single
	// larger value gets a transaction of its own.
	MaxTxBytes int64
	// Progress, if set, is called after each committed transaction, on Copy's goroutine.
	Progress func(CopyProgress)
}

// CopyProgress is how far a copy is.
type CopyProgress struct {
	Bucket      string // the top-level bucket being copied
	BucketsDone int    // top-level buckets copied completely
	BucketsAll  int    // top-level buckets in the source
	Keys        int    // values written so far
	Buckets     int    // nested buckets created so far
	Bytes       int64  // key and value bytes written so far
	Txs         int    // write transactions committed so far
}

// CopyReport is the outcome of Copy.
type CopyReport struct {
	Source Digest // of the source snapshot the copy was made from
	Dest   Digest // of the destination, read back after the copy
	Txs    int    // write transactions committed
}

// Copy copies everything src holds into dst, which must be empty, and verifies the copy.
//
// The source is read in ONE read transaction (one consistent snapshot: writes committed to src
// meanwhile are not copied); the destination is written in transactions of at most
// opts.MaxTxKeys values and buckets and opts.MaxTxBytes bytes. Each bucket's sequence is copied.
// Then the destination is read back and its digest compared with the source snapshot's: a
// difference fails with ErrMismatch naming the first differing bucket or key.
//
// dst is empty when every top-level bucket it has holds no key and has sequence 0, except meta,
// which holds only the schema version, equal to this build's: a store freshly created by Open.
// Otherwise Copy fails with ErrNotEmpty before writing anything. Both stores must have this
// build's schema version (ErrSchemaMismatch). A copy cut short (an error, ctx cancelled) leaves
// dst partly written: empty it (a new file, a new database) before copying again.
//
// The source's read transaction lasts as long as the whole copy: on PostgreSQL give ctx a
// deadline that long, or the engine bounds the transaction by its query timeout.
func Copy(ctx context.Context, dst, src *Store, opts CopyOptions) (CopyReport, error) {
	if err := ctx.Err(); err != nil {
		return CopyReport{}, err
	}
	if dst == src {
		return CopyReport{}, fmt.Errorf("%w: copy of a store onto itself", ErrInvalid)
	}
	if opts.MaxTxKeys <= 0 {
		opts.MaxTxKeys = defaultCopyTxKeys
	}
	if opts.MaxTxBytes <= 0 {
		opts.MaxTxBytes = defaultCopyTxBytes
	}
	if err := checkEmpty(ctx, dst); err != nil {
		return CopyReport{}, err
	}
	var rep CopyReport
	err := src.eng.view(ctx, func(tx Tx) error {
		if err := checkSchema(tx, src.eng.name()); err != nil {
			return err
		}
		c := &copier{ctx: ctx, dst: dst, opts: opts, digest: newDigester()}
		if err := walk(ctx, tx, c); err != nil {
			return err
		}
		if err := c.flush(); err != nil {
			return err
		}
		rep.Source, rep.Txs = c.digest.result(), c.prog.Txs
		var err error
		rep.Dest, err = compareWith(ctx, tx, rep.Source, dst)
		return err
	})
	if err != nil && !errors.Is(err, ErrMismatch) && !errors.Is(err, ErrSchemaMismatch) {
		err = fmt.Errorf("store: copy %s to %s: %w", src.eng.name(), dst.eng.name(), err)
	}
	return rep, err
}

// Checksum computes the digest of everything s holds, from one read transaction.
func Checksum(ctx context.Context, s *Store) (Digest, error) {
	if err := ctx.Err(); err != nil {
		return Digest{}, err
	}
	d := newDigester()
	err := s.view(ctx, "checksum", func(tx Tx) error { return walk(ctx, tx, d) })
	if err != nil {
		return Digest{}, err
	}
	return d.result(), nil
}

// Compare checks that cp holds what src holds (a copy made by Copy, say) and returns both
// digests: if they differ, the error wraps ErrMismatch and names the first differing bucket or
// key. Each store is read in one read transaction, src's held while cp is read.
func Compare(ctx context.Context, src, cp *Store) (srcDigest, cpDigest Digest, err error) {
	if err := ctx.Err(); err != nil {
		return Digest{}, Digest{}, err
	}
	err = src.eng.view(ctx, func(tx Tx) error {
		d := newDigester()
		if err := walk(ctx, tx, d); err != nil {
			return err
		}
		srcDigest = d.result()
		var err error
		cpDigest, err = compareWith(ctx, tx, srcDigest, cp)
		return err
	})
	if err != nil && !errors.Is(err, ErrMismatch) {
		err = fmt.Errorf("store: compare %s with %s: %w", src.eng.name(), cp.eng.name(), err)
	}
	return srcDigest, cpDigest, err
}

// compareWith computes the digest of other and, if it differs from want (the digest of tx),
// finds the first record that differs, in the same read transaction of other.
func compareWith(ctx context.Context, tx Tx, want Digest, other *Store) (Digest, error) {
	var got Digest
	err := other.eng.view(ctx, func(otx Tx) error {
		d := newDigester()
		if err := walk(ctx, otx, d); err != nil {
			return fmt.Errorf("read %s: %w", other.eng.name(), err)
		}
		if got = d.result(); got.Equal(want) {
			return nil
		}
		return fmt.Errorf("%w: %s: %w", ErrMismatch, other.eng.name(), firstDifference(ctx, tx, otx))
	})
	return got, err
}

// checkSchema requires this build's schema version in tx's meta bucket.
func checkSchema(tx Tx, name string) error {
	var stored uint64
	if meta := tx.Bucket([]byte(bucketMeta)); meta != nil {
		if v := meta.Get([]byte(keySchemaVersion)); len(v) == 8 {
			stored = binary.BigEndian.Uint64(v)
		}
	}
	if stored != SchemaVersion {
		return fmt.Errorf("%w: %s has schema version %d, this build %d (open it once with this build's 'cropshield serve' first, or migrate with the build that wrote it)",
			ErrSchemaMismatch, name, stored, SchemaVersion)
	}
	return nil
}

// checkEmpty fails unless s is as Open creates it (see Copy).
func checkEmpty(ctx context.Context, s *Store) error {
	err := s.eng.view(ctx, func(tx Tx) error {
		if err := checkSchema(tx, s.eng.name()); err != nil {
			return err
		}
		names, err := topLevelBuckets(tx)
		if err != nil {
			return err
		}
		for _, name := range names {
			b := tx.Bucket(name)
			if seq := b.Sequence(); seq != 0 {
				return fmt.Errorf("%w: %s: bucket %q has sequence %d", ErrNotEmpty, s.eng.name(), name, seq)
			}
			c := b.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				if string(name) == bucketMeta && string(k) == keySchemaVersion {
					continue
				}
				return fmt.Errorf("%w: %s: bucket %q holds key %s (copy into a new file or an empty database)",
					ErrNotEmpty, s.eng.name(), name, showKey(k))
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotEmpty) && !errors.Is(err, ErrSchemaMismatch) {
		err = fmt.Errorf("store: check the destination %s: %w", s.eng.name(), err)
	}
	return err
}

// topLevelBuckets lists tx's top-level buckets in byte order.
func topLevelBuckets(tx Tx) ([][]byte, error) {
	var names [][]byte
	add := func(name []byte) error { names = append(names, bytes.Clone(name)); return nil }
	var err error
	switch t := tx.(type) {
	case boltTx:
		err = t.tx.ForEach(func(name []byte, _ *bolt.Bucket) error { return add(name) })
	case *pgTx:
		// The root's rows are the top-level buckets' marker rows.
		err = (&pgBucket{tx: t, path: []byte{}}).ForEachBucket(add)
	default:
		err = fmt.Errorf("%w: no list of top-level buckets from %T", ErrUnsupported, tx)
	}
	if err != nil {
		return nil, fmt.Errorf("list buckets: %w", err)
	}
	slices.SortFunc(names, bytes.Compare)
	return names, nil
}

// visitor receives a store's records from walk, in order. Slices are valid until it returns.
type visitor interface {
	// bucket is called for each bucket (path from the top level) before its contents; top is the
	// index of its top-level bucket among all tops.
	bucket(path [][]byte, seq uint64, top, tops int) error
	value(path [][]byte, k, v []byte) error
}

// walk calls vis for every bucket and value of tx, depth first in byte order.
func walk(ctx context.Context, tx Tx, vis visitor) error {
	names, err := topLevelBuckets(tx)
	if err != nil {
		return err
	}
	// An empty top-level bucket is no record: Open creates those missing (a store written by an
	// earlier build may lack some), so its presence says nothing about the data.
	var tops []Bucket
	for _, name := range names {
		b := tx.Bucket(name)
		if b == nil {
			return fmt.Errorf("bucket %q listed but missing", name)
		}
		if k, _ := b.Cursor().First(); k == nil && b.Sequence() == 0 {
			continue
		}
		tops = append(tops, b)
		names[len(tops)-1] = name
	}
	w := &walker{ctx: ctx, vis: vis, tops: len(tops)}
	for i, b := range tops {
		w.top = i
		if err := w.walkBucket([][]byte{names[i]}, b); err != nil {
			return err
		}
	}
	return nil
}

type walker struct {
	ctx       context.Context
	vis       visitor
	top, tops int
	n         int
}

func (w *walker) walkBucket(path [][]byte, b Bucket) error {
	if err := w.vis.bucket(path, b.Sequence(), w.top, w.tops); err != nil {
		return err
	}
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if w.n++; w.n%1024 == 0 {
			if err := w.ctx.Err(); err != nil {
				return err
			}
		}
		if v == nil {
			if nb := b.Bucket(k); nb != nil {
				if err := w.walkBucket(append(path[:len(path):len(path)], k), nb); err != nil {
					return err
				}
				continue
			}
			v = []byte{} // an empty value
		}
		if err := w.vis.value(path, k, v); err != nil {
			return err
		}
	}
	return nil
}

// digester is the visitor that computes a Digest.
type digester struct {
	h      hash.Hash
	buf    []byte
	counts []BucketCount
}

func newDigester() *digester { return &digester{h: sha256.New()} }

const (
	recBucket = 'B'
	recValue  = 'V'
)

func (d *digester) head(tag byte, path [][]byte) {
	d.buf = append(d.buf[:0], tag)
	d.buf = binary.AppendUvarint(d.buf, uint64(len(path)))
	for _, p := range path {
		d.buf = binary.AppendUvarint(d.buf, uint64(len(p)))
		d.buf = append(d.buf, p...)
	}
}

func (d *digester) bucket(path [][]byte, seq uint64, _, _ int) error {
	d.head(recBucket, path)
	d.buf = binary.BigEndian.AppendUint64(d.buf, seq)
	d.h.Write(d.buf)
	if len(path) == 1 {
		d.counts = append(d.counts, BucketCount{Name: string(path[0]), Sequence: seq})
	} else {
		d.counts[len(d.counts)-1].Buckets++
	}
	return nil
}

func (d *digester) value(path [][]byte, k, v []byte) error {
	d.head(recValue, path)
	d.buf = binary.AppendUvarint(d.buf, uint64(len(k)))
	d.buf = append(d.buf, k...)
	d.buf = binary.AppendUvarint(d.buf, uint64(len(v)))
	d.h.Write(d.buf)
	d.h.Write(v)
	c := &d.counts[len(d.counts)-1]
	c.Keys++
	c.Bytes += int64(len(k) + len(v))
	return nil
}

func (d *digester) result() Digest {
	var dg Digest
	d.h.Sum(dg.Sum[:0])
	dg.Buckets = slices.Clone(d.counts)
	return dg
}

// copier is the visitor that digests the source and writes its records to dst in batches.
type copier struct {
	ctx    context.Context
	dst    *Store
	opts   CopyOptions
	digest *digester

	cur   *bucketRef // the bucket being walked
	ops   []copyOp
	bytes int64
	prog  CopyProgress
}

// bucketRef names a destination bucket by its parent and name (copied out of the source).
type bucketRef struct {
	parent *bucketRef
	name   []byte
}

// copyOp is one write: a bucket to create (value nil) or a value to put into bucket.
type copyOp struct {
	bucket *bucketRef
	create bool
	seq    uint64
	key    []byte
	value  []byte
}

func (c *copier) bucket(path [][]byte, seq uint64, top, tops int) error {
	if err := c.digest.bucket(path, seq, top, tops); err != nil {
		return err
	}
	// path extends the previous bucket's path or one of its ancestors'.
	parent := c.cur
	for parent != nil && depth(parent) >= len(path) {
		parent = parent.parent
	}
	if len(path) == 1 {
		c.prog.Bucket, c.prog.BucketsDone, c.prog.BucketsAll = string(path[0]), top, tops
	}
	c.cur = &bucketRef{parent: parent, name: bytes.Clone(path[len(path)-1])}
	return c.add(copyOp{bucket: c.cur, create: true, seq: seq}, len(c.cur.name))
}

func (c *copier) value(path [][]byte, k, v []byte) error {
	if err := c.digest.value(path, k, v); err != nil {
		return err
	}
	// After a nested bucket's contents come more of its parent's.
	for depth(c.cur) > len(path) {
		c.cur = c.cur.parent
	}
	return c.add(copyOp{bucket: c.cur, key: bytes.Clone(k), value: append(make([]byte, 0, len(v)), v...)}, len(k)+len(v))
}

func depth(b *bucketRef) int {
	n := 0
	for ; b != nil; b = b.parent {
		n++
	}
	return n
}

// add queues op, first committing the queue if op would overfill the transaction.
func (c *copier) add(op copyOp, size int) error {
	if len(c.ops) > 0 && (len(c.ops)+1 > c.opts.MaxTxKeys || c.bytes+int64(size) > c.opts.MaxTxBytes) {
		if err := c.flush(); err != nil {
			return err
		}
	}
	c.ops = append(c.ops, op)
	c.bytes += int64(size)
	return nil
}

// flush writes the queued operations in one transaction of dst.
func (c *copier) flush() error {
	if len(c.ops) == 0 {
		return nil
	}
	if err := c.ctx.Err(); err != nil {
		return err
	}
	err := c.dst.update(c.ctx, "copy", func(tx Tx) error {
		open := map[*bucketRef]Bucket{}
		var resolve func(r *bucketRef) (Bucket, error)
		resolve = func(r *bucketRef) (Bucket, error) {
			if b, ok := open[r]; ok {
				return b, nil
			}
			var b Bucket
			if r.parent == nil {
				b = tx.Bucket(r.name)
			} else {
				p, err := resolve(r.parent)
				if err != nil {
					return nil, err
				}
				b = p.Bucket(r.name)
			}
			if b == nil {
				return nil, fmt.Errorf("bucket %s missing in the destination", showPath(r))
			}
			open[r] = b
			return b, nil
		}
		for _, op := range c.ops {
			if op.create {
				var b Bucket
				var err error
				if op.bucket.parent == nil {
					b, err = tx.CreateBucketIfNotExists(op.bucket.name)
				} else {
					p, perr := resolve(op.bucket.parent)
					if perr != nil {
						return perr
					}
					b, err = p.CreateBucketIfNotExists(op.bucket.name)
				}
				if err != nil {
					return fmt.Errorf("create bucket %s: %w", showPath(op.bucket), err)
				}
				if err := b.SetSequence(op.seq); err != nil {
					return fmt.Errorf("set the sequence of bucket %s: %w", showPath(op.bucket), err)
				}
				open[op.bucket] = b
				continue
			}
			b, err := resolve(op.bucket)
			if err != nil {
				return err
			}
			if err := b.Put(op.key, op.value); err != nil {
				return fmt.Errorf("put %s in bucket %s: %w", showKey(op.key), showPath(op.bucket), err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, op := range c.ops {
		if op.create {
			if op.bucket.parent != nil {
				c.prog.Buckets++
			}
			continue
		}
		c.prog.Keys++
		c.prog.Bytes += int64(len(op.key) + len(op.value))
	}
	c.prog.Txs++
	c.ops, c.bytes = c.ops[:0], 0
	if c.opts.Progress != nil {
		c.opts.Progress(c.prog)
	}
	return nil
}

// record is one item of a store's walk, for comparing two stores.
type record struct {
	path   [][]byte
	bucket bool
	seq    uint64
	key    []byte
	value  []byte
}

func (r record) String() string {
	if r.bucket {
		return fmt.Sprintf("bucket %s (sequence %d)", joinPath(r.path), r.seq)
	}
	return fmt.Sprintf("key %s in bucket %s (%d bytes)", showKey(r.key), joinPath(r.path), len(r.value))
}

func (r record) equal(o record) bool {
	return r.bucket == o.bucket && r.seq == o.seq && slices.EqualFunc(r.path, o.path, bytes.Equal) &&
		bytes.Equal(r.key, o.key) && bytes.Equal(r.value, o.value)
}

// recorder is the visitor that yields records.
type recorder struct{ yield func(record) bool }

var errStopWalk = errors.New("stop")

func (r recorder) bucket(path [][]byte, seq uint64, _, _ int) error {
	if !r.yield(record{path: path, bucket: true, seq: seq}) {
		return errStopWalk
	}
	return nil
}

func (r recorder) value(path [][]byte, k, v []byte) error {
	if !r.yield(record{path: path, key: k, value: v}) {
		return errStopWalk
	}
	return nil
}

// records yields tx's records in walk order; a failed walk ends with a record-less error.
func records(ctx context.Context, tx Tx, failed *error) iter.Seq[record] {
	return func(yield func(record) bool) {
		if err := walk(ctx, tx, recorder{yield}); err != nil && !errors.Is(err, errStopWalk) {
			*failed = err
		}
	}
}

// firstDifference walks two stores side by side and describes the first record that differs.
func firstDifference(ctx context.Context, src, dst Tx) error {
	var serr, derr error
	snext, sstop := iter.Pull(records(ctx, src, &serr))
	defer sstop()
	dnext, dstop := iter.Pull(records(ctx, dst, &derr))
	defer dstop()
	for {
		s, sok := snext()
		d, dok := dnext()
		if err := errors.Join(serr, derr); err != nil {
			return fmt.Errorf("compare: %w", err)
		}
		switch {
		case !sok && !dok:
			return errors.New("the digests differ but no record does (a store changed meanwhile?)")
		case !dok:
			return fmt.Errorf("first difference: %s is missing from the copy", s)
		case !sok:
			return fmt.Errorf("first difference: %s is in the copy only", d)
		case !s.equal(d):
			if !s.bucket && !d.bucket && bytes.Equal(s.key, d.key) && slices.EqualFunc(s.path, d.path, bytes.Equal) {
				return fmt.Errorf("first difference: the value of key %s in bucket %s (%d bytes in the source, %d in the copy)",
					showKey(s.key), joinPath(s.path), len(s.value), len(d.value))
			}
			return fmt.Errorf("first difference: the source has %s, the copy %s", s, d)
		}
	}
}

// showKey quotes a key: printable text as it is, anything else escaped.
func showKey(k []byte) string { return strconv.Quote(string(k)) }

func joinPath(path [][]byte) string {
	parts := make([]string, len(path))
	for i, p := range path {
		parts[i] = showKey(p)
	}
	return strings.Join(parts, "/")
}

func showPath(r *bucketRef) string {
	var path [][]byte
	for ; r != nil; r = r.parent {
		path = append([][]byte{r.name}, path...)
	}
	return joinPath(path)
}
