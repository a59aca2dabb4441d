package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cropshield/cropshield/internal/pgtest"
)

// pgWaiters counts the backends waiting for the advisory lock key (not holding it).
func pgWaiters(t *testing.T, conn *pgx.Conn, key int64) int {
	t.Helper()
	var n int
	err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
		AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1`, key).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitWaiters polls until want backends wait for the advisory lock key, failing after a minute.
func waitWaiters(t *testing.T, conn *pgx.Conn, key int64, want int) {
	t.Helper()
	waitWaitersIf(t, conn, key, want, func(n int) bool { return n == want })
}

// waitWaitersIf polls until ok(backends waiting for the advisory lock key), failing after a minute.
func waitWaitersIf(t *testing.T, conn *pgx.Conn, key int64, want int, ok func(n int) bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		n := pgWaiters(t, conn, key)
		if ok(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d backends wait for advisory lock %#x, want %d", n, key, want)
		}
	}
}

// A COMMIT in flight when the transaction's context ends is seen through, as bbolt commits once fn
// returns nil: given up, it fails the call whether or not the server got past the commit record (a
// committed write reported as failed: the handler notes a reply attempt and sends the reply only
// if that write succeeds, so the message handed in again finds an attempt that "may have been
// delivered" and nobody answers it). The trigger here holds the COMMIT before its commit record,
// the one point a test can hold it at.
func TestPGCommitOutlivesTheContext(t *testing.T) {
	url := pgtest.URL(t)
	s := newTestStore(t, url)
	const gate = 0x7e57c0
	// A deferred trigger makes the COMMIT of a write of key "slow-commit" wait for the gate.
	pgExec(t, url, `CREATE FUNCTION wait_gate() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_advisory_lock(`+fmt.Sprint(gate)+`); PERFORM pg_advisory_unlock(`+fmt.Sprint(gate)+`); RETURN NULL; END $$`,
		`CREATE CONSTRAINT TRIGGER wait_gate AFTER INSERT ON kv DEFERRABLE INITIALLY DEFERRED
		FOR EACH ROW WHEN (NEW.key = 'slow-commit'::bytea) EXECUTE FUNCTION wait_gate()`)
	gateConn := lockedConn(t, url, gate)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- s.eng.update(ctx, func(tx Tx) error {
			return tx.Bucket([]byte(bucketMeta)).Put([]byte("slow-commit"), []byte("1"))
		})
	}()
	waitWaiters(t, gateConn, gate, 1) // the COMMIT runs, waiting for the gate
	cancel()
	// A broken engine gives up on the COMMIT at once; give it time to, then open the gate. (A
	// correct one cannot return before the gate opens: this wait decides nothing for it.)
	var early error
	select {
	case early = <-done:
		done <- early
	case <-time.After(time.Second):
	}
	if _, err := gateConn.Exec(t.Context(), "SELECT pg_advisory_unlock($1)", gate); err != nil {
		t.Fatal(err)
	}
	err := <-done
	var v []byte
	if verr := s.eng.view(t.Context(), func(tx Tx) error {
		v = tx.Bucket([]byte(bucketMeta)).Get([]byte("slow-commit"))
		return nil
	}); verr != nil {
		t.Fatal(verr)
	}
	if err != nil {
		// pgx closed the connection and cancelled the COMMIT: rolled back here (it waited in a
		// trigger), committed where the cancel comes after the commit record (its WAL flush).
		t.Errorf("update = %v: the COMMIT was given up while in flight", err)
	}
	if string(v) != "1" {
		t.Errorf("the write = %q, want committed (update returned %v)", v, err)
	}
}

// A write transaction whose context ends while it waits for the write lock stops waiting on the
// server too: no backend is left queued for the lock (a backend whose client went away still
// takes the lock in its turn, and holds a connection slot meanwhile; under load every timed-out
// writer would leave one behind).
func TestPGCancelledLockWaitLeavesNoWaiter(t *testing.T) {
	url := pgtest.URL(t)
	s := newTestStore(t, url)
	holder := lockedConn(t, url, pgWriteLock)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- s.eng.update(ctx, func(tx Tx) error {
			return tx.Bucket([]byte(bucketMeta)).Put([]byte("k"), []byte("v"))
		})
	}()
	waitWaiters(t, holder, pgWriteLock, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("update = %v, want context.Canceled", err)
	}
	waitWaiters(t, holder, pgWriteLock, 0)
	if _, err := holder.Exec(t.Context(), "SELECT pg_advisory_unlock($1)", pgWriteLock); err != nil {
		t.Fatal(err)
	}
	// The pool still works.
	if err := s.eng.update(t.Context(), func(tx Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Put([]byte("k"), []byte("v"))
	}); err != nil {
		t.Fatal(err)
	}
}

// Write transactions queued for the write lock (held long by another replica's write, say) leave
// connections for reads: on bbolt a read never waits for writers, and here a read waiting for a
// pooled connection behind queued writers would wait for all of them.
func TestPGQueuedWritersLeaveConnectionsForReads(t *testing.T) {
	url := pgtest.URL(t)
	const pool = 4
	s, err := Open(t.Context(), url, Options{PoolSize: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	holder := lockedConn(t, url, pgWriteLock)
	const writers = 2 * pool
	done := make(chan error, writers)
	for i := range writers {
		go func() {
			done <- s.eng.update(t.Context(), func(tx Tx) error {
				return tx.Bucket([]byte(bucketMeta)).Put(fmt.Appendf(nil, "w%d", i), []byte("v"))
			})
		}()
	}
	waitWaitersIf(t, holder, pgWriteLock, pool/2, func(n int) bool { return n >= pool/2 })
	// Give an engine that lets every writer take a connection the time to take them all.
	pe := s.eng.(*pgEngine)
	for deadline := time.Now().Add(2 * time.Second); pe.pool.Stat().AcquiredConns() < pool && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	read := make(chan error, 1)
	go func() {
		_, err := s.GetChat(t.Context(), "telegram", "1")
		read <- err
	}()
	select {
	case err := <-read:
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("GetChat = %v, want ErrNotFound", err)
		}
		read <- nil
	case <-time.After(time.Minute): // the writers wait for as long as holder holds the lock: a safety net, not a measurement
		t.Errorf("a read waits behind %d writers queued for the write lock (pool of %d)", writers, pool)
	}
	if _, err := holder.Exec(t.Context(), "SELECT pg_advisory_unlock($1)", pgWriteLock); err != nil {
		t.Fatal(err)
	}
	for range writers {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	<-read
}

// lockedConn is a connection of its own to url holding the session advisory lock key (the write
// lock, or a gate a trigger waits for); closed when the test ends.
func lockedConn(t *testing.T, url string, key int64) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	if _, err := conn.Exec(t.Context(), "SELECT pg_advisory_lock($1)", key); err != nil {
		t.Fatal(err)
	}
	return conn
}
