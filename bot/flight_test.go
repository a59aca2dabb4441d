package bot_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/internal/testenv"
)

// gated is the real model behind a gate: Analyze says it started, then waits for the gate (or
// its context, as the worker slot and the model do) before running the model.
type gated struct {
	*inference.Model
	started chan struct{}
	gate    chan struct{}
}

func (g *gated) Analyze(ctx context.Context, photo []byte) (inference.Result, error) {
	g.started <- struct{}{}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return inference.Result{}, ctx.Err()
	}
	return g.Model.Analyze(ctx, photo)
}

// TestAbandonedWaiterDoesNotFailTheOthers: two chats send the same photo at once and share one
// analysis; the first one's message is abandoned (its context cancelled) while the analysis
// runs. The second still gets its diagnosis, from that one analysis.
func TestAbandonedWaiterDoesNotFailTheOthers(t *testing.T) {
	model := &gated{Model: testenv.ContractSession(t), started: make(chan struct{}, 2), gate: make(chan struct{})}
	f := newFixture(t, bot.Config{Threshold: 0.01}, model)
	leaf := testenv.LeafJPEG(t, 320, 240, 7)
	type result struct {
		replies []bot.Reply
		err     error
	}
	handle := func(ctx context.Context, chat, id string, out *outbox, done chan<- result) {
		m := bot.Message{ID: id, Chat: private(chat), Sender: bot.Sender{ID: "u-" + chat, Name: "Amina"}, Photo: bytesPhoto(leaf)}
		err := f.handler.Handle(ctx, m, out)
		done <- result{out.take(), err}
	}

	ctx1, cancel1 := context.WithCancel(context.Background())
	defer cancel1()
	first, second := make(chan result, 1), make(chan result, 1)
	go handle(ctx1, "c1", "m1", &outbox{}, first)
	<-model.started // the first message's analysis runs

	go handle(context.Background(), "c2", "m2", &outbox{}, second)
	// The second message has its photo, missed the cache and joins the running analysis.
	for bot.FlightWaiters(f.handler, hashOf(leaf)) < 2 {
		runtime.Gosched()
	}

	cancel1()
	<-first // the first message is given up
	close(model.gate)

	r := <-second
	if r.err != nil {
		t.Fatalf("second message: %v", r.err)
	}
	if len(r.replies) != 1 || r.replies[0].Kind != bot.KindDiagnosis {
		t.Fatalf("second message got %+v, want one diagnosis", r.replies)
	}
	if n := f.inferences(); n != 1 {
		t.Errorf("inferences = %v, want the one shared analysis", n)
	}
	select {
	case <-model.started:
		t.Error("a second analysis of the same photo started")
	default:
	}
}
