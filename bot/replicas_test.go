package bot_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/cropshield/cropshield/bot"
)

// TestReplicasInboxIDsUnique: two intakes on one store (two replicas) accept a message each; both
// entries are in the inbox. With ids numbered per process both got id 0 and the second replaced
// the first: a message acknowledged to the platform was lost.
func TestReplicasInboxIDsUnique(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "cropshield.db"))
	h := newScriptHandler()
	ch := &fakeChannel{platform: bot.Telegram, h: h, photos: map[string][]byte{}}
	h.block["1"], h.block["2"] = make(chan struct{}), make(chan struct{}) // never released: the stop interrupts them
	var ins []*bot.Intake
	for _, name := range []string{"a", "b"} {
		in := bot.NewIntake(bot.IntakeConfig{}, slog.New(slog.DiscardHandler), st, h)
		t.Cleanup(func() { _ = in.Stop(canceled()) })
		if _, err := in.Open(ctx, ch); err != nil {
			t.Fatal(name, err)
		}
		ins = append(ins, in)
	}
	if err := ins[0].Accept(ctx, bot.Telegram, []bot.Message{tgText("x", "1", "one")}, 0); err != nil {
		t.Fatal(err)
	}
	if err := ins[1].Accept(ctx, bot.Telegram, []bot.Message{tgText("y", "2", "two")}, 0); err != nil {
		t.Fatal(err)
	}
	p, err := st.PendingInbox(ctx, string(bot.Telegram))
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 2 {
		t.Errorf("the inbox holds %d entries after two replicas accepted a message each, want 2", len(p))
	}
}

// canceled is a context whose drain is over: a stop interrupts what runs.
func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
