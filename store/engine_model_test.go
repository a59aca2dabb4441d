package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/cropshield/cropshield/internal/pgtest"
)

// The proof that the PostgreSQL engine is bbolt's equal: both engines run the same random
// operations (values, nested buckets, sequences, cursor walks both ways, seeks, cursor deletes,
// ForEach, bucket deletion, stats) and every result is compared with an in-memory model.

// mBucket is the model of a bucket.
type mBucket struct {
	vals map[string][]byte
	subs map[string]*mBucket
	seq  uint64
}

func newMBucket() *mBucket { return &mBucket{vals: map[string][]byte{}, subs: map[string]*mBucket{}} }

func (b *mBucket) clone() *mBucket {
	c := newMBucket()
	c.seq = b.seq
	for k, v := range b.vals {
		c.vals[k] = bytes.Clone(v)
	}
	for k, s := range b.subs {
		c.subs[k] = s.clone()
	}
	return c
}

// keys returns the bucket's keys (values and buckets) in order.
func (b *mBucket) keys() []string {
	var ks []string
	for k := range b.vals {
		ks = append(ks, k)
	}
	for k := range b.subs {
		ks = append(ks, k)
	}
	slices.Sort(ks) // Go compares strings byte-wise, as bbolt compares keys
	return ks
}

// find returns the bucket at path, or nil.
func (b *mBucket) find(path []string) *mBucket {
	for _, p := range path {
		if b = b.subs[p]; b == nil {
			return nil
		}
	}
	return b
}

// paths lists the paths of every nested bucket (the root excluded).
func (b *mBucket) paths(prefix []string, out *[][]string) {
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range b.subs {
			if !yield(k) {
				return
			}
		}
	}) {
		p := append(slices.Clone(prefix), k)
		*out = append(*out, p)
		b.subs[k].paths(p, out)
	}
}

// modelOp is one random operation; run performs it on an engine's transaction and model on the
// model, each returning a description of the result to compare.
type modelOp struct {
	desc string
	run  func(tx Tx) string
}

// errName names the error classes both engines must agree on.
func errName(err error) string {
	for _, e := range []error{berrors.ErrIncompatibleValue, berrors.ErrBucketExists, berrors.ErrBucketNotFound,
		berrors.ErrKeyRequired, berrors.ErrBucketNameRequired, berrors.ErrTxNotWritable} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	if err != nil {
		return "unexpected: " + err.Error()
	}
	return "ok"
}

// openBucket walks path from tx; it returns nil if a bucket on the way is missing.
func openBucket(tx Tx, path []string) Bucket {
	if len(path) == 0 {
		return nil
	}
	b := tx.Bucket([]byte(path[0]))
	for _, p := range path[1:] {
		if b == nil {
			return nil
		}
		b = b.Bucket([]byte(p))
	}
	return b
}

// keyAlphabet makes keys that collide often and cover byte order's corners.
var keyAlphabet = []byte{0x00, 0x01, 'a', 'b', 0x7f, 0x80, 0xfe, 0xff}

func randKey(r *rand.Rand) string {
	n := 1 + r.IntN(3)
	k := make([]byte, n)
	for i := range k {
		k[i] = keyAlphabet[r.IntN(len(keyAlphabet))]
	}
	return string(k)
}

func randValue(r *rand.Rand) []byte {
	if r.IntN(8) == 0 {
		return []byte{} // empty values are values, not absent keys
	}
	v := make([]byte, r.IntN(40))
	for i := range v {
		v[i] = byte(r.Uint32())
	}
	return v
}

func kv(k, v []byte) string {
	if k == nil {
		return "<end>"
	}
	if v == nil {
		return fmt.Sprintf("%x=<bucket>", k)
	}
	return fmt.Sprintf("%x=%x", k, v)
}

// genOp makes a random operation against the model m (changing it when writable) and returns
// what the engines must answer.
func genOp(r *rand.Rand, m *mBucket, writable bool) (modelOp, string) {
	var paths [][]string
	m.paths(nil, &paths)
	// The bucket to work in: the root for top-level bucket operations, else an existing one.
	var path []string
	if len(paths) > 0 && r.IntN(5) > 0 {
		path = paths[r.IntN(len(paths))]
	}
	b := m.find(path)
	k := randKey(r)
	kind := r.IntN(14)
	if !writable && kind < 7 {
		kind += 7
	}
	if len(path) == 0 && kind != 3 && kind != 4 && kind != 5 && kind != 10 {
		// The root holds only buckets.
		if kind = 10; writable {
			kind = []int{3, 3, 4, 5, 10}[r.IntN(5)]
		}
	}
	ps := strings.Join(path, "/")
	bucketOf := func(tx Tx) Bucket {
		if len(path) == 0 {
			return nil
		}
		return openBucket(tx, path)
	}
	switch kind {
	case 0, 1: // Put
		v := randValue(r)
		want := "ok"
		if _, isB := b.subs[k]; isB {
			want = berrors.ErrIncompatibleValue.Error()
		} else {
			b.vals[k] = bytes.Clone(v)
		}
		return modelOp{fmt.Sprintf("put %x/%x", ps, k), func(tx Tx) string { return errName(bucketOf(tx).Put([]byte(k), v)) }}, want
	case 2: // Delete
		want := "ok"
		if _, isB := b.subs[k]; isB {
			want = berrors.ErrIncompatibleValue.Error()
		} else {
			delete(b.vals, k)
		}
		return modelOp{fmt.Sprintf("delete %x/%x", ps, k), func(tx Tx) string { return errName(bucketOf(tx).Delete([]byte(k))) }}, want
	case 3, 4: // CreateBucketIfNotExists, CreateBucket
		ifNot := kind == 3
		if r.IntN(2) == 0 { // few names, so that deleted buckets come back
			k = string(keyAlphabet[r.IntN(len(keyAlphabet))])
		}
		want := "ok"
		if _, isV := b.vals[k]; isV {
			want = berrors.ErrIncompatibleValue.Error()
		} else if _, isB := b.subs[k]; isB && !ifNot {
			want = berrors.ErrBucketExists.Error()
		} else if !isB {
			b.subs[k] = newMBucket()
		}
		return modelOp{fmt.Sprintf("create bucket %x/%x (if not exists %v)", ps, k, ifNot), func(tx Tx) string {
			var err error
			switch {
			case len(path) == 0 && ifNot:
				_, err = tx.CreateBucketIfNotExists([]byte(k))
			case len(path) == 0:
				_, err = tx.CreateBucket([]byte(k))
			case ifNot:
				_, err = bucketOf(tx).CreateBucketIfNotExists([]byte(k))
			default: // Bucket has no CreateBucket: CreateBucketIfNotExists after a check
				nb := bucketOf(tx)
				if nb.Bucket([]byte(k)) != nil {
					err = berrors.ErrBucketExists
				} else {
					_, err = nb.CreateBucketIfNotExists([]byte(k))
				}
			}
			return errName(err)
		}}, want
	case 5: // DeleteBucket (rarely, so trees grow)
		if len(b.subs) > 0 && r.IntN(2) == 0 {
			k = slices.Sorted(func(yield func(string) bool) {
				for s := range b.subs {
					if !yield(s) {
						return
					}
				}
			})[r.IntN(len(b.subs))]
		}
		want := "ok"
		if _, isV := b.vals[k]; isV {
			want = berrors.ErrIncompatibleValue.Error()
		} else if _, isB := b.subs[k]; !isB {
			want = berrors.ErrBucketNotFound.Error()
		} else {
			delete(b.subs, k)
		}
		return modelOp{fmt.Sprintf("delete bucket %x/%x", ps, k), func(tx Tx) string {
			if len(path) == 0 {
				return errName(tx.DeleteBucket([]byte(k)))
			}
			return errName(bucketOf(tx).DeleteBucket([]byte(k)))
		}}, want
	case 6: // NextSequence or SetSequence
		if r.IntN(4) == 0 {
			v := r.Uint64N(1 << 40)
			b.seq = v
			return modelOp{fmt.Sprintf("set sequence %x %d", ps, v), func(tx Tx) string { return errName(bucketOf(tx).SetSequence(v)) }}, "ok"
		}
		b.seq++
		want := fmt.Sprint(b.seq)
		return modelOp{fmt.Sprintf("next sequence %x", ps), func(tx Tx) string {
			s, err := bucketOf(tx).NextSequence()
			if err != nil {
				return errName(err)
			}
			return fmt.Sprint(s)
		}}, want
	case 7: // Get
		want := "<nil>"
		if v, ok := b.vals[k]; ok {
			want = fmt.Sprintf("%x", v)
		}
		return modelOp{fmt.Sprintf("get %x/%x", ps, k), func(tx Tx) string {
			v := bucketOf(tx).Get([]byte(k))
			if v == nil {
				return "<nil>"
			}
			return fmt.Sprintf("%x", v)
		}}, want
	case 8: // Sequence, Stats
		want := fmt.Sprint(b.seq)
		// bbolt's Stats counts nested buckets' keys too, and reads pages, not the transaction's own
		// changes: compare counts of flat buckets in read transactions.
		flat := len(b.subs) == 0 && !writable
		if flat {
			want += fmt.Sprintf(" keys %d", len(b.vals))
		}
		return modelOp{fmt.Sprintf("sequence, stats %x", ps), func(tx Tx) string {
			bb := bucketOf(tx)
			got := fmt.Sprint(bb.Sequence())
			if flat {
				got += fmt.Sprintf(" keys %d", bb.Stats().KeyN)
			}
			return got
		}}, want
	case 9: // ForEach, ForEachBucket
		var want []string
		for _, key := range b.keys() {
			if v, ok := b.vals[key]; ok {
				want = append(want, kv([]byte(key), v))
			} else {
				want = append(want, kv([]byte(key), nil))
			}
		}
		var wantB []string
		for _, key := range b.keys() {
			if _, ok := b.subs[key]; ok {
				wantB = append(wantB, fmt.Sprintf("%x", key))
			}
		}
		return modelOp{fmt.Sprintf("for each %x", ps), func(tx Tx) string {
			var got, gotB []string
			bb := bucketOf(tx)
			err := bb.ForEach(func(k, v []byte) error { got = append(got, kv(k, v)); return nil })
			err = errors.Join(err, bb.ForEachBucket(func(k []byte) error { gotB = append(gotB, fmt.Sprintf("%x", k)); return nil }))
			return fmt.Sprint(got, gotB, errName(err))
		}}, fmt.Sprint(want, wantB, "ok")
	case 10: // top-level Tx.Bucket presence
		_, isB := m.subs[k]
		return modelOp{fmt.Sprintf("tx bucket %x", k), func(tx Tx) string {
			return fmt.Sprint(tx.Bucket([]byte(k)) != nil)
		}}, fmt.Sprint(isB)
	default: // a cursor walk, deleting on the way when writable
		return genWalk(r, b, ps, bucketOf, writable)
	}
}

// genWalk makes a random cursor walk over model bucket b.
func genWalk(r *rand.Rand, b *mBucket, ps string, bucketOf func(Tx) Bucket, writable bool) (modelOp, string) {
	type move struct {
		kind string
		seek string
	}
	// The model cursor: on key pos (the last one it returned or sought); it stays put past an end.
	var out []string
	var pos string
	onKey := false
	var landed bool
	at := func(k string) string {
		pos, onKey, landed = k, true, true
		if v, ok := b.vals[k]; ok {
			return kv([]byte(k), v)
		}
		return kv([]byte(k), nil)
	}
	// Moves are drawn as the model walks: a delete only right after a move that landed on a key,
	// and a repositioning move after a delete (where a bbolt cursor stands after a delete is not
	// part of the contract: it stands on the following key).
	var moves []move
	deleted := false
	for range 1 + r.IntN(12) {
		var mv move
		switch r.IntN(7) {
		case 0:
			mv = move{kind: "first"}
		case 1:
			mv = move{kind: "last"}
		case 2:
			mv = move{kind: "seek", seek: randKey(r)}
		case 3, 4:
			mv = move{kind: "next"}
		case 5:
			mv = move{kind: "prev"}
		default:
			mv = move{kind: "delete"}
		}
		if len(moves) == 0 || deleted {
			mv = []move{{kind: "first"}, {kind: "last"}, {kind: "seek", seek: randKey(r)}}[r.IntN(3)]
		}
		if mv.kind == "delete" && (!writable || !landed) {
			mv = move{kind: "next"}
		}
		moves = append(moves, mv)
		deleted = mv.kind == "delete"
		landed = false
		keys := b.keys()
		switch mv.kind {
		case "first", "last":
			if len(keys) == 0 {
				out = append(out, kv(nil, nil))
				pos, onKey = "", false
				continue
			}
			k := keys[0]
			if mv.kind == "last" {
				k = keys[len(keys)-1]
			}
			out = append(out, at(k))
		case "seek":
			i, _ := slices.BinarySearch(keys, mv.seek)
			if i == len(keys) {
				out = append(out, kv(nil, nil))
				pos, onKey = mv.seek, false
				continue
			}
			out = append(out, at(keys[i]))
		case "next":
			i, found := slices.BinarySearch(keys, pos)
			if found {
				i++
			}
			if i >= len(keys) {
				out = append(out, kv(nil, nil))
				continue
			}
			out = append(out, at(keys[i]))
		case "prev":
			i, _ := slices.BinarySearch(keys, pos)
			if i == 0 {
				out = append(out, kv(nil, nil))
				continue
			}
			out = append(out, at(keys[i-1]))
		case "delete":
			res := "ok"
			if _, isB := b.subs[pos]; onKey && isB {
				res = berrors.ErrIncompatibleValue.Error()
			} else if onKey {
				delete(b.vals, pos)
			}
			out = append(out, "delete "+res)
		}
	}
	desc := fmt.Sprintf("walk %x %v", ps, moves)
	return modelOp{desc, func(tx Tx) string {
		c := bucketOf(tx).Cursor()
		var got []string
		for _, mv := range moves {
			var k, v []byte
			switch mv.kind {
			case "first":
				k, v = c.First()
			case "last":
				k, v = c.Last()
			case "seek":
				k, v = c.Seek([]byte(mv.seek))
			case "next":
				k, v = c.Next()
			case "prev":
				k, v = c.Prev()
			case "delete":
				got = append(got, "delete "+errName(c.Delete()))
				continue
			}
			got = append(got, kv(k, v))
		}
		return strings.Join(got, " ")
	}}, strings.Join(out, " ")
}

// modelEngines opens the engines under test: a bbolt file and a PostgreSQL database.
func modelEngines(t *testing.T) map[string]engine {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "model.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	pe, err := openPG(t.Context(), pgtest.URL(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	engines := map[string]engine{"bbolt": &boltEngine{db: db}, "postgres": pe}
	t.Cleanup(func() {
		for _, e := range engines {
			if err := e.close(); err != nil {
				t.Error(err)
			}
		}
	})
	return engines
}

func TestEnginesAgreeWithTheModel(t *testing.T) {
	engines := modelEngines(t)
	ctx := context.Background()
	for _, seed := range []uint64{1, 2, 3} {
		r := rand.New(rand.NewPCG(seed, 15))
		model := newMBucket()
		for round := range 60 {
			writable := r.IntN(3) > 0
			// A write round that fails on purpose rolls back: the model goes back too.
			rollback := writable && r.IntN(6) == 0
			before := model.clone()
			var ops []modelOp
			var want []string
			for range 1 + r.IntN(25) {
				op, w := genOp(r, model, writable)
				ops = append(ops, op)
				want = append(want, w)
			}
			if rollback {
				model = before
			}
			errRollback := errors.New("roll back")
			for name, e := range engines {
				var got []string
				fn := func(tx Tx) error {
					for _, op := range ops {
						got = append(got, op.run(tx))
					}
					if rollback {
						return errRollback
					}
					return nil
				}
				var err error
				if writable {
					err = e.update(ctx, fn)
				} else {
					err = e.view(ctx, fn)
				}
				if rollback && !errors.Is(err, errRollback) || !rollback && err != nil {
					t.Fatalf("seed %d round %d %s: transaction: %v", seed, round, name, err)
				}
				for i := range ops {
					if got[i] != want[i] {
						t.Fatalf("seed %d round %d %s: %s\n got %s\nwant %s", seed, round, name, ops[i].desc, got[i], want[i])
					}
				}
			}
		}
		// Start the next seed from empty databases: delete every top-level bucket.
		for name, e := range engines {
			err := e.update(ctx, func(tx Tx) error {
				for k := range model.subs {
					if err := tx.DeleteBucket([]byte(k)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatalf("%s: clear: %v", name, err)
			}
		}
	}
}
