package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cropshield/cropshield/store"
)

// Staff replies across replicas. The dashboard runs on every replica, but a channel may run on
// one at a time: WhatsApp's connection (whatsmeow allows one per linked number) lives on the
// replica holding its lock, and the others cannot send on it. A staff reply written on such a
// replica goes into the store's shared outbox; the replica running the channel sends it and logs
// it (StaffDelivery), and the dashboard request waits for the outcome.

// RemoteSender is an optional Responder ability: Send works in this process only while SendsHere
// reports true. Otherwise the channel runs on another replica (or, for now, on none) and staff
// replies go through the shared outbox. A Responder without it always sends here (the web chat;
// Telegram, whose Bot API takes sends from any replica).
type RemoteSender interface {
	SendsHere() bool
}

const (
	// staffRelayWait bounds how long SendStaffReply waits for another replica to send a reply
	// (within the dashboard request); staffRelayPoll is how often it looks.
	staffRelayWait = 10 * time.Second
	staffRelayPoll = 200 * time.Millisecond
	// staffOutboxKeep: an outcome nobody read (the request that queued it ended first) is
	// removed after this long; pruned at most every staffOutboxPrune.
	staffOutboxKeep  = time.Hour
	staffOutboxPrune = time.Minute
	// DefaultStaffPoll is how often the replica running a channel looks for replies queued for it.
	DefaultStaffPoll = time.Second
)

// relayStaffReply queues a checked staff reply for the replica that runs chat's channel and
// waits for its outcome (SendStaffReply).
func relayStaffReply(ctx context.Context, log StaffLog, chat ChatRef, staff, text string, now time.Time) error {
	platform := string(chat.Platform)
	id, err := log.EnqueueStaffReply(ctx, store.StaffReply{Platform: platform, ChatID: chat.ID, ChatKind: string(chat.Kind),
		ChatTitle: chat.Title, Text: text, Staff: staff, Queued: now})
	if err != nil {
		return fmt.Errorf("bot: queue staff reply: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, staffRelayWait)
	defer cancel()
	tick := time.NewTicker(staffRelayPoll)
	defer tick.Stop()
	for {
		select {
		case <-wctx.Done():
			return fmt.Errorf("%w (reply %d)", ErrReplyQueued, id)
		case <-tick.C:
		}
		// A final outcome is the answer even if removing it failed (the wait ending as it was
		// read): the entry is pruned later.
		o, err := log.StaffReplyOutcome(wctx, platform, id)
		switch {
		case o.State == store.StaffReplyDelivered:
			return nil
		case o.State == store.StaffReplyNotDelivered:
			return fmt.Errorf("%w: %s (by the replica running %s)", ErrNotDelivered, o.Reason, platform)
		case wctx.Err() != nil:
			// The wait is over: the select above says so.
		case err != nil:
			// Still in the outbox as far as we know: the replica running the channel sends it.
			return fmt.Errorf("%w (reply %d; its outcome cannot be read: %w)", ErrReplyQueued, id, err)
		}
	}
}

// StaffOutbox is what the replica running a channel needs to send the staff replies queued for
// it; *store.Store implements it.
type StaffOutbox interface {
	PendingStaffReplies(ctx context.Context, platform string) ([]store.StaffReply, error)
	ClaimStaffReply(ctx context.Context, platform string, id uint64, now time.Time) (store.StaffReply, error)
	FinishStaffReply(ctx context.Context, platform string, id uint64, log store.Record) (uint64, error)
	PruneStaffReplies(ctx context.Context, before time.Time) (int, error)
}

// StaffDelivery sends the staff replies other replicas queued for its channel, as SendStaffReply
// sends one here: kind staff, logged in the conversation with its outcome.
type StaffDelivery struct {
	Log   *slog.Logger
	Store StaffOutbox
	// Channel sends the replies of its platform. While it is a RemoteSender that cannot send
	// here, nothing is claimed.
	Channel interface {
		Platform() Platform
		Responder
	}
	Poll time.Duration    // DefaultStaffPoll if not positive
	Now  func() time.Time // time.Now if nil
}

// Run delivers until ctx ends: at once (replies queued while no replica ran the channel), then
// every Poll. Polling is enough: staff replies are rare, a second is nothing next to the time an
// agent takes to type one, and an idle poll is one small read. It also prunes outcomes nobody
// read, every minute.
func (d *StaffDelivery) Run(ctx context.Context) {
	poll := d.Poll
	if poll <= 0 {
		poll = DefaultStaffPoll
	}
	var pruned time.Time
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if now := d.now(); now.Sub(pruned) >= staffOutboxPrune {
			pruned = now
			if _, err := d.Store.PruneStaffReplies(ctx, now.Add(-staffOutboxKeep)); err != nil && ctx.Err() == nil {
				d.Log.Warn("cannot prune the staff outbox", "err", err)
			}
		}
		if _, err := d.Drain(ctx); err != nil && ctx.Err() == nil {
			d.Log.Warn("cannot deliver queued staff replies; trying again", "platform", string(d.Channel.Platform()), "err", err)
		}
		t.Reset(poll)
	}
}

// Drain sends the replies pending now and returns how many it sent or tried to send. It stops
// when the channel stops sending here (its connection ended): the rest wait for the replica that
// runs it next, rather than being claimed for sends bound to fail.
func (d *StaffDelivery) Drain(ctx context.Context) (int, error) {
	remote, _ := d.Channel.(RemoteSender)
	if remote != nil && !remote.SendsHere() {
		return 0, nil
	}
	p := d.Channel.Platform()
	pending, err := d.Store.PendingStaffReplies(ctx, string(p))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, q := range pending {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if remote != nil && !remote.SendsHere() {
			return n, nil
		}
		// Claimed before it is sent, so no other replica sends it too (at most once).
		r, err := d.Store.ClaimStaffReply(ctx, string(p), q.ID, d.now())
		if errors.Is(err, store.ErrNotFound) {
			continue // another replica took it
		}
		if err != nil {
			return n, err
		}
		chat := ChatRef{Platform: p, ID: r.ChatID, Kind: ChatKind(r.ChatKind), Title: r.ChatTitle}
		sendErr := d.Channel.Send(ctx, Reply{Chat: chat, Text: r.Text, Kind: KindStaff})
		rec := store.Record{Time: d.now(), Platform: string(p), ChatID: r.ChatID, Direction: store.Outbound,
			Text: r.Text, Kind: string(KindStaff), Staff: r.Staff}
		if sendErr != nil {
			rec.Error = reasonNotDelivered
			d.Log.Warn("queued staff reply not delivered", "staff", r.Staff, "platform", string(p), "chat", r.ChatID, "err", sendErr)
		} else {
			d.Log.Info("queued staff reply sent", "staff", r.Staff, "platform", string(p), "chat", r.ChatID)
		}
		// The outcome and the log record in one transaction. A crash between the claim and this
		// write leaves the reply claimed without an outcome: it may have reached the farmer, so it
		// is not sent again; the conversation has no record of it, and the entry is pruned.
		if _, err := d.Store.FinishStaffReply(context.WithoutCancel(ctx), string(p), r.ID, rec); err != nil {
			return n, fmt.Errorf("bot: record a queued staff reply's outcome: %w", err)
		}
		n++
	}
	return n, nil
}

func (d *StaffDelivery) now() time.Time {
	if d.Now == nil {
		return time.Now()
	}
	return d.Now()
}
