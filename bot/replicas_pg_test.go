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

	checkResumedOnce(t, a, b, msg)
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
