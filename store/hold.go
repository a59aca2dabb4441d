package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrHeld reports that another process sharing the database holds a named lock (Hold).
var ErrHeld = errors.New("store: held by another process")

// holdCheckEvery is how often a held PostgreSQL lock's connection is checked.
const holdCheckEvery = 5 * time.Second

// Holding is a named lock held by this process (Hold). Release it when done.
type Holding struct {
	lost    chan struct{}
	once    sync.Once
	release func() error
}

// Lost is closed when the lock may no longer be held: its connection to PostgreSQL failed (the
// server ended the session, the network broke), so another process may take it now. Whoever
// holds the lock stops the work it guards. On bbolt it is never closed.
func (h *Holding) Lost() <-chan struct{} { return h.lost }

// Release gives the lock up; Lost is closed. It may be called more than once.
func (h *Holding) Release() error {
	var err error
	h.once.Do(func() {
		if h.release != nil {
			err = h.release()
		}
		close(h.lost)
	})
	return err
}

// Hold takes the lock called name, which one process at a time may hold among every process
// sharing the database: the work only one replica may do (WhatsApp's connection for one linked
// number: whatsmeow allows one). It fails at once with ErrHeld when another process holds it.
//
// On bbolt the file is one process's already, so the lock is always granted. On PostgreSQL it is
// a session advisory lock on a connection of its own (not one of the pool's): it is released when
// the process ends, however it ends, as the server closes the session; the connection is
// checked every 5 s and Lost is closed when it fails.
func (s *Store) Hold(ctx context.Context, name string) (*Holding, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkID("lock name", name); err != nil {
		return nil, err
	}
	pe, ok := s.eng.(*pgEngine)
	if !ok {
		return &Holding{lost: make(chan struct{})}, nil
	}
	return pe.hold(ctx, name)
}

// holdKey is the advisory lock key of a named lock: a hash, so that names (a phone number) are
// not in pg_locks.
func holdKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("cropshield hold\x00" + name))
	return int64(h.Sum64())
}

func (e *pgEngine) hold(ctx context.Context, name string) (*Holding, error) {
	cctx, cancel := context.WithTimeout(ctx, e.queryTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, e.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, e.err("hold "+name, err)
	}
	key := holdKey(name)
	var got bool
	if err := conn.QueryRow(cctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&got); err != nil {
		return nil, errors.Join(e.err("hold "+name, err), conn.Close(context.WithoutCancel(ctx)))
	}
	if !got {
		if err := conn.Close(context.WithoutCancel(ctx)); err != nil {
			return nil, e.err("hold "+name, err)
		}
		return nil, fmt.Errorf("%w: %s on %s", ErrHeld, name, e.url)
	}
	h := &Holding{lost: make(chan struct{})}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(holdCheckEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				pctx, cancel := context.WithTimeout(context.Background(), holdCheckEvery)
				err := conn.Ping(pctx)
				cancel()
				if err != nil {
					// The session is gone, and the lock with it.
					go h.Release() //nolint:errcheck // the connection is broken; Release only closes it
					return
				}
			}
		}
	}()
	h.release = func() error {
		close(stop)
		<-done
		rctx, cancel := context.WithTimeout(context.Background(), e.queryTimeout)
		defer cancel()
		// Closing the session releases its advisory locks: no unlock needed, and none can fail
		// half-way.
		if err := conn.Close(rctx); err != nil {
			return e.err("release "+name, err)
		}
		return nil
	}
	return h, nil
}
