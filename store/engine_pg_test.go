package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cropshield/cropshield/internal/dburl"
	"github.com/cropshield/cropshield/internal/pgtest"
)

// A PostgreSQL URL's password appears in no error.
func TestPGErrorsHidePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// Nothing listens on port 1.
	for _, u := range []string{
		"postgres://app:s3cretpw@127.0.0.1:1/cropshield?sslmode=disable&connect_timeout=2",
		"postgres://app@127.0.0.1:1/cropshield?password=s3cretpw&sslmode=disable",
		"postgres://app@127.0.0.1:1/cropshield?password=s3cretpw%&sslmode=disable",
	} {
		s, err := Open(ctx, u, Options{Timeout: 2 * time.Second})
		if err == nil {
			_ = s.Close()
			t.Fatalf("Open %s succeeded", dburl.Redact(u))
		}
		if strings.Contains(err.Error(), "s3cretpw") {
			t.Errorf("error shows the password: %v", err)
		}
		if !strings.Contains(err.Error(), "127.0.0.1") {
			t.Errorf("error does not name the server: %v", err)
		}
	}
}

// The operations on a bbolt file refuse a URL, without showing its password.
func TestFileOperationsRefuseAURL(t *testing.T) {
	ctx := t.Context()
	const u = "postgres://app:s3cretpw@127.0.0.1:1/cropshield"
	_, err1 := OpenReadOnly(ctx, u, Options{})
	err2 := CheckFile(ctx, u)
	_, _, err3 := Compact(ctx, u, Options{})
	for i, err := range []error{err1, err2, err3} {
		if !errors.Is(err, ErrUnsupported) || strings.Contains(err.Error(), "s3cretpw") {
			t.Errorf("operation %d: %v, want ErrUnsupported without the password", i, err)
		}
	}
	if !onPG() {
		return
	}
	s := newTestStore(t, "")
	if _, err := s.Backup(ctx, &bytes.Buffer{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Backup: %v, want ErrUnsupported", err)
	}
	if _, err := s.BackupFile(ctx, filepath.Join(t.TempDir(), "b.db")); !errors.Is(err, ErrUnsupported) {
		t.Errorf("BackupFile: %v, want ErrUnsupported", err)
	}
}

// pgExec runs statements on a test database.
func pgExec(t *testing.T, url string, sqls ...string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	for _, q := range sqls {
		if _, err := conn.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// A database migrated by a newer build is refused before anything is written; replicas starting
// together apply each migration once.
func TestPGMigrations(t *testing.T) {
	url := pgtest.URL(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := Open(t.Context(), url, Options{})
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("replicas starting together: %v", err)
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var n, maxV int
	if err := conn.QueryRow(t.Context(), "SELECT count(*), max(version) FROM schema_migrations").Scan(&n, &maxV); err != nil {
		t.Fatal(err)
	}
	if n != len(ms) || maxV != len(ms) {
		t.Fatalf("schema_migrations: %d rows up to %d, want %d", n, maxV, len(ms))
	}

	pgExec(t, url, fmt.Sprintf("INSERT INTO schema_migrations (version) VALUES (%d)", len(ms)+1))
	before := snapshot(t, url)
	s, err := Open(t.Context(), url, Options{})
	if err == nil {
		_ = s.Close()
		t.Fatal("Open accepted a database with a newer migration")
	}
	if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), fmt.Sprint(len(ms)+1)) {
		t.Errorf("error = %v, want ErrNewerSchema naming migration %d", err, len(ms)+1)
	}
	if !bytes.Equal(before, snapshot(t, url)) {
		t.Error("Open wrote to a database with a newer migration")
	}
}

// Two Stores on one database (two replicas) see each other's writes, and their write
// transactions never interleave: concurrent read-increment-write of one key loses no increment.
func TestPGReplicasSerializeWrites(t *testing.T) {
	url := pgtest.URL(t)
	a := newTestStore(t, url)
	b := newTestStore(t, url)
	key := []byte("counter")
	const workers, each = 8, 25
	var wg sync.WaitGroup
	for w := range workers {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Go(func() {
			for range each {
				err := s.eng.update(t.Context(), func(tx Tx) error {
					m := tx.Bucket([]byte(bucketMeta))
					var n uint64
					if v := m.Get(key); len(v) == 8 {
						n = binary.BigEndian.Uint64(v)
					}
					return m.Put(key, binary.BigEndian.AppendUint64(nil, n+1))
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for name, s := range map[string]*Store{"a": a, "b": b} {
		err := s.eng.view(t.Context(), func(tx Tx) error {
			if v := tx.Bucket([]byte(bucketMeta)).Get(key); len(v) != 8 || binary.BigEndian.Uint64(v) != workers*each {
				t.Errorf("replica %s reads %x, want %d", name, v, workers*each)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// A chat written on one replica is read on the other.
	if _, err := a.TouchChat(t.Context(), Chat{Platform: "telegram", ID: "7", Kind: "private"}, testTime); err != nil {
		t.Fatal(err)
	}
	if c, err := b.GetChat(t.Context(), "telegram", "7"); err != nil || c.ID != "7" {
		t.Errorf("the other replica: %+v, %v", c, err)
	}
}

// Tx.ID's contract (kv.go) across replicas: a write's id is greater than that of a read whose
// snapshot misses it, and not greater than that of a read that sees it.
func TestPGTxID(t *testing.T) {
	url := pgtest.URL(t)
	a := newTestStore(t, url)
	b := newTestStore(t, url)
	var before, write, after uint64
	ctx := t.Context()
	started, wrote := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		// A read whose snapshot is taken before the write and which asks for its id after it.
		err := b.eng.view(ctx, func(tx Tx) error {
			tx.Bucket([]byte(bucketMeta)).Get([]byte("x")) // takes the snapshot
			close(started)
			<-wrote
			before = tx.ID()
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	})
	<-started
	err := a.eng.update(ctx, func(tx Tx) error {
		write = tx.ID()
		return tx.Bucket([]byte(bucketMeta)).Put([]byte("x"), []byte("1"))
	})
	close(wrote)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.eng.view(ctx, func(tx Tx) error { after = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	if !(before < write && write <= after) {
		t.Errorf("ids: read before %d, write %d, read after %d", before, write, after)
	}
}

// A query that fails inside a transaction fails the transaction, whatever fn returns: a write
// transaction rolls back what it did before the failure.
func TestPGQueryErrorIsSticky(t *testing.T) {
	s := newTestStore(t, pgtest.URL(t))
	ctx, cancel := context.WithCancel(t.Context())
	var afterGet []byte
	err := s.eng.update(ctx, func(tx Tx) error {
		m := tx.Bucket([]byte(bucketMeta))
		if err := m.Put([]byte("a"), []byte("1")); err != nil {
			return err
		}
		cancel()
		afterGet = m.Get([]byte("a")) // fails: no error to return but nil
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("update = %v, want context.Canceled", err)
	}
	if afterGet != nil {
		t.Errorf("Get after the failure = %q", afterGet)
	}
	err = s.eng.view(t.Context(), func(tx Tx) error {
		if v := tx.Bucket([]byte(bucketMeta)).Get([]byte("a")); v != nil {
			t.Errorf("a write of a failed transaction was committed: %q", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Deleting a bucket removes every bucket nested in it, at any depth, and nothing beside it
// (names that share a prefix): both engines.
func TestEnginesDeleteNestedBuckets(t *testing.T) {
	for name, e := range modelEngines(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			put := func(b Bucket, k string) {
				if err := b.Put([]byte(k), []byte("v"+k)); err != nil {
					t.Fatal(err)
				}
			}
			err := e.update(ctx, func(tx Tx) error {
				for _, top := range []string{"a", "ab", "a\x00", "b"} {
					tb, err := tx.CreateBucket([]byte(top))
					if err != nil {
						return err
					}
					put(tb, "k")
					nb, err := tb.CreateBucketIfNotExists([]byte("n"))
					if err != nil {
						return err
					}
					put(nb, "k")
					deep, err := nb.CreateBucketIfNotExists([]byte("d"))
					if err != nil {
						return err
					}
					put(deep, "k")
					if _, err := deep.NextSequence(); err != nil {
						return err
					}
				}
				return tx.DeleteBucket([]byte("a"))
			})
			if err != nil {
				t.Fatal(err)
			}
			err = e.update(ctx, func(tx Tx) error {
				a, err := tx.CreateBucket([]byte("a"))
				if err != nil {
					return err
				}
				nb, err := a.CreateBucketIfNotExists([]byte("n"))
				if err != nil {
					return err
				}
				deep, err := nb.CreateBucketIfNotExists([]byte("d"))
				if err != nil {
					return err
				}
				if k, _ := deep.Cursor().First(); k != nil || deep.Sequence() != 0 || nb.Get([]byte("k")) != nil {
					t.Errorf("a re-created bucket holds what its namesake held: %q, sequence %d", k, deep.Sequence())
				}
				for _, top := range []string{"ab", "a\x00", "b"} {
					d := tx.Bucket([]byte(top)).Bucket([]byte("n")).Bucket([]byte("d"))
					if d == nil || string(d.Get([]byte("k"))) != "vk" || d.Sequence() != 1 {
						t.Errorf("bucket %q/n/d lost its contents", top)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A cursor over large values (photos) reads them a few at a time, not 64 pages at once.
func TestPGCursorPagesBoundedInBytes(t *testing.T) {
	s := newTestStore(t, pgtest.URL(t))
	const n, size = 30, 256 << 10
	err := s.eng.update(t.Context(), func(tx Tx) error {
		b := tx.Bucket([]byte(bucketPhotos))
		for i := range n {
			if err := b.Put(fmt.Appendf(nil, "%03d", i), bytes.Repeat([]byte{byte(i)}, size)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.eng.view(t.Context(), func(tx Tx) error {
		c := tx.Bucket([]byte(bucketPhotos)).Cursor().(*pgCursor)
		seen := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(v) != size || v[0] != byte(seen) {
				t.Fatalf("row %d: %q, %d bytes", seen, k, len(v))
			}
			seen++
			held := 0
			for _, r := range c.page {
				held += len(r.value)
			}
			if limit := max(cursorPageBytes, cursorFirstPage*size); held > limit {
				t.Fatalf("a page holds %d bytes, more than %d", held, limit)
			}
		}
		if seen != n {
			t.Errorf("walked %d rows, want %d", seen, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
