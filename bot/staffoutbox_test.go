package bot_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/store"
)

// replicaChannel is a WhatsApp-like channel: it sends only on the replica where it runs.
type replicaChannel struct {
	outbox
	here bool
}

func (c *replicaChannel) Platform() bot.Platform { return bot.WhatsApp }
func (c *replicaChannel) SendsHere() bool        { return c.here }
func (c *replicaChannel) Send(ctx context.Context, r bot.Reply) error {
	if !c.here {
		return errors.New("not running on this replica")
	}
	return c.outbox.Send(ctx, r)
}

// TestStaffReplyThroughOtherReplica: a staff reply written where the channel does not run is
// queued, sent by the replica running it (as a staff reply, logged once with its outcome), and
// SendStaffReply reports that outcome; with no replica running the channel it stays queued and
// goes out once one does.
func TestStaffReplyThroughOtherReplica(t *testing.T) {
	chat := bot.ChatRef{Platform: bot.WhatsApp, ID: "27820000001", Kind: bot.Private}
	tests := []struct {
		name    string
		fail    error // the running replica's platform refuses the reply
		running bool  // a replica runs the channel while the reply is written
		wantErr error
		logged  string // the log record's Error
	}{
		{name: "delivered", running: true},
		{name: "not delivered", running: true, fail: errors.New("outside the reply window"), wantErr: bot.ErrNotDelivered, logged: "not delivered"},
		{name: "nobody runs it", wantErr: bot.ErrReplyQueued},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t, t.TempDir()+"/db")
			standby := &replicaChannel{}
			runner := &replicaChannel{here: true, outbox: outbox{fail: tt.fail}}
			d := &bot.StaffDelivery{Log: slog.New(slog.DiscardHandler), Store: st, Channel: runner}
			ctx := t.Context()
			var wg sync.WaitGroup
			if tt.running {
				dctx, stop := context.WithCancel(ctx)
				wg.Go(func() { d.Run(dctx) })
				defer wg.Wait()
				defer stop()
			} else {
				// Nobody delivers: the wait ends with the request (here sooner than the 10 s bound).
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
				defer cancel()
			}
			err := bot.SendStaffReply(ctx, st, standby, chat, "alice", " Spray copper. ", time.Now())
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if !tt.running {
				if n, err := d.Drain(t.Context()); err != nil || n != 1 {
					t.Fatalf("drained %d, %v; want 1", n, err)
				}
			}
			if sent := standby.take(); len(sent) != 0 {
				t.Errorf("the standby replica sent %v", sent)
			}
			if tt.fail == nil {
				if sent := runner.take(); len(sent) != 1 || sent[0].Kind != bot.KindStaff || sent[0].Chat != chat || sent[0].Text != "Spray copper." {
					t.Errorf("sent %+v", sent)
				}
			}
			recs, err := st.RecentMessages(t.Context(), "whatsapp", chat.ID, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 || recs[0].Staff != "alice" || recs[0].Kind != string(bot.KindStaff) || recs[0].Direction != store.Outbound ||
				recs[0].Error != tt.logged || recs[0].Text != "Spray copper." {
				t.Errorf("logged %+v", recs)
			}
			// Sent once: nothing is left to send.
			if n, err := d.Drain(t.Context()); err != nil || n != 0 {
				t.Errorf("drained again %d, %v", n, err)
			}
		})
	}
}

// TestStaffDeliveryWaitsForConnection: a replica whose channel cannot send yet (connecting)
// claims nothing, so the reply is not lost to a send bound to fail.
func TestStaffDeliveryWaitsForConnection(t *testing.T) {
	st := openStore(t, t.TempDir()+"/db")
	ch := &replicaChannel{}
	if _, err := st.EnqueueStaffReply(t.Context(), store.StaffReply{Platform: "whatsapp", ChatID: "c1", Text: "hi", Staff: "alice", Queued: time.Now()}); err != nil {
		t.Fatal(err)
	}
	d := &bot.StaffDelivery{Log: slog.New(slog.DiscardHandler), Store: st, Channel: ch}
	if n, err := d.Drain(t.Context()); err != nil || n != 0 {
		t.Fatalf("drained %d, %v before the connection", n, err)
	}
	ch.here = true
	if n, err := d.Drain(t.Context()); err != nil || n != 1 {
		t.Fatalf("drained %d, %v once connected", n, err)
	}
	if sent := ch.take(); len(sent) != 1 || sent[0].Text != "hi" {
		t.Fatalf("sent %+v", sent)
	}
}

// goneAfterOne is a replicaChannel whose connection ends (lock lost, logged out) once it sent one
// reply.
type goneAfterOne struct{ replicaChannel }

func (c *goneAfterOne) Send(ctx context.Context, r bot.Reply) error {
	err := c.replicaChannel.Send(ctx, r)
	c.here = false
	return err
}

// TestStaffDeliveryStopsWithTheConnection: the replies still pending when the channel stops
// sending here in the middle of a drain are not claimed (and logged as not delivered, sends bound
// to fail): they stay queued for the replica that runs it next.
func TestStaffDeliveryStopsWithTheConnection(t *testing.T) {
	st := openStore(t, t.TempDir()+"/db")
	for _, text := range []string{"first", "second"} {
		if _, err := st.EnqueueStaffReply(t.Context(), store.StaffReply{Platform: "whatsapp", ChatID: "c1", Text: text, Staff: "alice", Queued: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	ch := &goneAfterOne{replicaChannel{here: true}}
	d := &bot.StaffDelivery{Log: slog.New(slog.DiscardHandler), Store: st, Channel: ch}
	if n, err := d.Drain(t.Context()); err != nil || n != 1 {
		t.Fatalf("drained %d, %v; want 1 (the connection ended after it)", n, err)
	}
	pending, err := st.PendingStaffReplies(t.Context(), "whatsapp")
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].Text != "second" {
		t.Fatalf("pending %+v, want the second reply still queued", pending)
	}
	recs, err := st.RecentMessages(t.Context(), "whatsapp", "c1", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Text != "first" || recs[0].Error != "" {
		t.Fatalf("logged %+v, want only the first, delivered", recs)
	}
}

// outcomeCutShort is a store whose read of a final outcome is cut short by the end of the
// request while it removes the entry: the outcome was read, the removal failed.
type outcomeCutShort struct {
	*store.Store
	deliver func()
	cancel  context.CancelFunc
}

func (s *outcomeCutShort) StaffReplyOutcome(_ context.Context, platform string, id uint64) (store.StaffReply, error) {
	s.deliver()
	o, err := s.Store.StaffReplyOutcome(context.Background(), platform, id)
	if err != nil {
		return o, err
	}
	s.cancel()
	return o, context.Canceled
}

// TestStaffReplyOutcomeReadAsTheRequestEnds: an outcome read as the request ends is the answer:
// the agent is not told a reply that was sent (or refused) is still queued.
func TestStaffReplyOutcomeReadAsTheRequestEnds(t *testing.T) {
	st := openStore(t, t.TempDir()+"/db")
	chat := bot.ChatRef{Platform: bot.WhatsApp, ID: "27820000001", Kind: bot.Private}
	runner := &replicaChannel{here: true}
	d := &bot.StaffDelivery{Log: slog.New(slog.DiscardHandler), Store: st, Channel: runner}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	log := &outcomeCutShort{Store: st, cancel: cancel, deliver: func() {
		if _, err := d.Drain(t.Context()); err != nil {
			t.Error(err)
		}
	}}
	if err := bot.SendStaffReply(ctx, log, &replicaChannel{}, chat, "alice", "Spray copper.", time.Now()); err != nil {
		t.Fatalf("error %v, want nil (delivered)", err)
	}
	if sent := runner.take(); len(sent) != 1 {
		t.Fatalf("sent %+v", sent)
	}
}
