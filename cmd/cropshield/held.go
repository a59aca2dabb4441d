package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/store"
)

// standbyRetry is how often a replica standing by tries to take the lock of work another
// replica does.
const standbyRetry = 5 * time.Second

// holdStore is where the lock is held (*store.Store).
type holdStore interface {
	Hold(ctx context.Context, name string) (*store.Holding, error)
}

// runHeld runs run only while this process holds the lock name among every replica sharing the
// database (store.Hold): the work one replica at a time may do, WhatsApp's connection for one
// linked number. While another replica holds it this one stands by (state "standby", which
// /healthz counts as healthy) and tries again every 5 s, so it takes over within seconds of the
// holder stopping or dying. If the lock is lost (the database connection broke) run's context
// is cancelled and this replica stands by again. run ending by itself ends runHeld with its
// error, as an unheld run would; ctx ending ends it with nil.
func runHeld(ctx context.Context, log *slog.Logger, st holdStore, name string, state func(string), run func(context.Context) error) error {
	announced := false
	for {
		h, err := st.Hold(ctx, name)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, store.ErrHeld) {
				if !announced {
					log.Info("another replica runs this (one at a time); this one stands by and takes over if it stops", "lock", name)
					announced = true
				}
				state("standby")
			} else {
				log.Warn("cannot take the lock; trying again", "lock", name, "err", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(standbyRetry):
			}
			continue
		}
		if announced {
			log.Info("taking over: the replica that ran this stopped", "lock", name)
			announced = false
		}
		state("running")
		rctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-h.Lost():
				cancel()
			case <-rctx.Done():
			}
		}()
		err = run(rctx)
		lost := false
		select {
		case <-h.Lost():
			lost = ctx.Err() == nil
		default:
		}
		cancel()
		err = errors.Join(err, h.Release())
		if !lost {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		log.Warn("lost the lock (database connection); stopped here, standing by", "lock", name, "err", err)
	}
}

// adapterRun is how serve runs adapter a on the intake: beside the delivery of the staff replies
// other replicas queued for it if it sends on one replica only (bot.RemoteSender) and the store
// is shared with other replicas (on a bbolt file nothing is queued: startReview), and, if lock
// is not "", under that lock (runHeld, reporting its state).
func adapterRun(log *slog.Logger, st *store.Store, a bot.Adapter, in *bot.Intake, lock string, state func(string)) func(context.Context) error {
	run := func(ctx context.Context) error { return a.Run(ctx, in) }
	if _, ok := a.(bot.RemoteSender); ok && st.Shared() {
		run = withStaffDelivery(log, st, a, run)
	}
	if lock == "" {
		return run
	}
	return func(ctx context.Context) error {
		return runHeld(ctx, log.With("adapter", string(a.Platform())), st, lock, state, run)
	}
}

// withStaffDelivery runs, beside run and for as long as it runs (under the lock when it is held),
// the delivery of the staff replies other replicas queued for ch's channel: the dashboard of a
// replica where the channel does not run queues them (bot.RemoteSender).
func withStaffDelivery(log *slog.Logger, st bot.StaffOutbox, ch bot.Channel, run func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		dctx, stop := context.WithCancel(ctx)
		d := &bot.StaffDelivery{Log: log.With("part", "staff outbox", "adapter", string(ch.Platform())), Store: st, Channel: ch}
		var wg sync.WaitGroup
		wg.Go(func() { d.Run(dctx) })
		defer wg.Wait()
		defer stop()
		return run(ctx)
	}
}
