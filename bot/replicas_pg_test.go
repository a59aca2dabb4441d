package bot_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/internal/pgtest"
	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// pgReplicas returns two fixtures that are two replicas: each its own handler, model session and
// store handle (its own connection pool) on ONE PostgreSQL database. It skips where PostgreSQL is
// absent (pgtest).
func pgReplicas(t *testing.T, cfg bot.Config) (a, b *fixture) {
	t.Helper()
	url := pgtest.URL(t)
	mk := func() *fixture {
		f := &fixture{t: t, path: url, out: &outbox{}}
		f.store = openStore(t, url)
		f.build(cfg, nil)
		return f
	}
	return mk(), mk()
}

// TestPGReplicasEachMessageAnsweredOnce is TestEachMessageAnsweredOnce with two replicas on one
// PostgreSQL: a message answered by one replica and delivered again to the other is not answered
// twice, and a message whose first replica died at any point of its turn is answered by the other
// exactly as the first would have after a restart. The photo analysed by one is a cache hit on
// the other.
func TestPGReplicasEachMessageAnsweredOnce(t *testing.T) {
	a, b := pgReplicas(t, bot.Config{Threshold: 0.01, Burst: 100})
	chat := bot.ChatRef{Platform: bot.Telegram, ID: "42", Kind: bot.Private}
	leaf := testenv.LeafJPEG(t, 320, 240, 12)
	msg := func(id string) bot.Message {
		return bot.Message{ID: id, Chat: chat, Sender: bot.Sender{ID: "7"}, Photo: bytesPhoto(leaf), Time: time.Unix(1700000000, 0)}
	}
	if r := a.handle(msg("100")); len(r) != 1 {
		t.Fatalf("first delivery, replica a: %v", r)
	}
	if r := b.handle(msg("100")); len(r) != 0 {
		t.Fatalf("the same message delivered to replica b was answered again: %v", r)
	}
	if a.inbound("42") != 1 || b.inbound("42") != 1 {
		t.Errorf("inbound records = %d (a) / %d (b), want 1", a.inbound("42"), b.inbound("42"))
	}
	if r := b.handle(msg("101")); len(r) != 1 {
		t.Fatalf("the same photo in a new message, replica b: %v", r)
	}
	if a.inferences() != 1 || b.inferences() != 0 {
		t.Errorf("inferences a=%v b=%v, want 1 and 0: the photo analysed on a is a cache hit on b", a.inferences(), b.inferences())
	}

	ctx := context.Background()
	begin := func(id string) {
		t.Helper()
		if _, existed, err := a.store.BeginTurn(ctx, store.Record{Time: time.Now(), Platform: "telegram", ChatID: "42",
			Direction: store.Inbound, SenderID: "7", MessageID: id}); err != nil || existed {
			t.Fatalf("BeginTurn: %v %v", existed, err)
		}
	}
	for _, tc := range []struct {
		name      string
		crash     func(id string) // what replica a did before it died
		wantReply bool
	}{
		{"a died after recording, before replying", func(id string) { begin(id) }, true},
		{"a died while sending (delivery unknown)", func(id string) {
			begin(id)
			if err := a.store.AttemptReply(ctx, "telegram", "42", id, 0, nil); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"a died after the reply was sent", func(id string) {
			begin(id)
			if err := a.store.ReplySent(ctx, id, 0, store.Record{Time: time.Now(), Platform: "telegram", ChatID: "42",
				Direction: store.Outbound, Text: "sent before a died", ReplyTo: id}, false); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.ReplaceAll(tc.name, " ", "-")
			before := b.inbound("42")
			tc.crash(id)
			r := b.handle(msg(id))
			if got := len(r) == 1; got != tc.wantReply {
				t.Fatalf("replica b's replies = %v, want a reply: %v", r, tc.wantReply)
			}
			if b.inbound("42") != before+1 {
				t.Errorf("inbound records %d, want %d: the resumed message was logged twice", b.inbound("42"), before+1)
			}
			if r := a.handle(msg(id)); len(r) != 0 {
				t.Errorf("delivered to replica a once more after b finished: %v", r)
			}
		})
	}
}

// replyLog is a channel shared by replicas for the test: every reply any of them sends, in the
// order sent.
type replyLog struct {
	mu   sync.Mutex
	sent []string // ReplyTo of each reply
}

type logChannel struct{ l *replyLog }

func (c logChannel) Platform() bot.Platform { return bot.Telegram }

func (c logChannel) Send(_ context.Context, r bot.Reply) error {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	c.l.sent = append(c.l.sent, r.ReplyTo)
	return nil
}

func (c logChannel) FetchPhoto(context.Context, string, int64) ([]byte, error) {
	return nil, fmt.Errorf("no photos here")
}

// TestPGReplicasIntakeOnce: two replicas (intake + real handler + store handle each) on one
// PostgreSQL; the messages of 12 chats are accepted alternately by one replica and the other, as a
// load balancer spreads webhook deliveries, every third delivered again to the other. Each is
// answered exactly once across the two, each chat's answers in the order its messages came.
func TestPGReplicasIntakeOnce(t *testing.T) {
	a, b := pgReplicas(t, bot.Config{Threshold: 0.01, Burst: 1000})
	log := &replyLog{}
	var ins []*bot.Intake
	for i, f := range []*fixture{a, b} {
		in := bot.NewIntake(bot.IntakeConfig{Replica: fmt.Sprintf("r%d", i), Workers: 4}, slog.New(slog.DiscardHandler), f.store, f.handler)
		if _, err := in.Open(context.Background(), logChannel{log}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = in.Stop(context.Background()) })
		ins = append(ins, in)
	}
	const chats, perChat = 12, 6
	want := map[string][]string{}
	var wg sync.WaitGroup
	for c := range chats {
		chat := fmt.Sprintf("%d", 500+c)
		for k := range perChat {
			want[chat] = append(want[chat], fmt.Sprintf("%s-%d", chat, k))
		}
		wg.Go(func() {
			for k := range perChat {
				m := tgText(chat, fmt.Sprintf("%s-%d", chat, k), "/help")
				first := (c + k) % 2
				if err := ins[first].Accept(context.Background(), bot.Telegram, []bot.Message{m}, 0); err != nil {
					t.Error(err)
				}
				if k%3 == 0 {
					if err := ins[1-first].Accept(context.Background(), bot.Telegram, []bot.Message{m}, 0); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	// Wait until every message is answered (or a minute passed: then what is missing is named).
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		log.mu.Lock()
		n := len(log.sent)
		log.mu.Unlock()
		if n >= chats*perChat {
			break
		}
	}
	// A message answered twice would show now or a moment later: let the replicas finish.
	for _, in := range ins {
		if err := in.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string][]string{}
	log.mu.Lock()
	for _, id := range log.sent {
		chat := strings.SplitN(id, "-", 2)[0]
		got[chat] = append(got[chat], id)
	}
	log.mu.Unlock()
	for chat, ids := range want {
		if !slices.Equal(got[chat], ids) {
			t.Errorf("chat %s answered %v, want %v (each once, in order)", chat, got[chat], ids)
		}
	}
}
