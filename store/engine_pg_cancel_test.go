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
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		n := pgWaiters(t, conn, key)
		if n == want {
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
	gateConn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer gateConn.Close(context.WithoutCancel(t.Context()))
	if _, err := gateConn.Exec(t.Context(), "SELECT pg_advisory_lock($1)", gate); err != nil {
		t.Fatal(err)
	}

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
	err = <-done
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
	holder, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(context.WithoutCancel(t.Context()))
	if _, err := holder.Exec(t.Context(), "SELECT pg_advisory_lock($1)", pgWriteLock); err != nil {
		t.Fatal(err)
	}
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
