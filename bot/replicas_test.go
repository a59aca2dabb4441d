package bot_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/bot/bottest"
	"github.com/cropshield/cropshield/store"
)

// testClock is a clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// ledger records, across the replicas, what each chat's messages did: handlings started,
// answers, and whether two of a chat's messages were ever handled at once.
type ledger struct {
	mu       bottest.Guard
	running  map[string]string   // chat → message being handled
	answered map[string][]string // chat → messages answered, in order
	by       map[string]string   // message → replica that answered it
	overlap  []string
}

func newLedger() *ledger {
	return &ledger{running: map[string]string{}, answered: map[string][]string{}, by: map[string]string{}}
}

func (l *ledger) count() int {
	n := 0
	for _, a := range l.answered {
		n += len(a)
	}
	return n
}

// replicaHandler is one replica's handler: it records in the ledger and, while block is set,
// holds every message until its context ends (a replica that is killed while handling).
type replicaHandler struct {
	name  string
	l     *ledger
	block bool
	begun int // guarded by l.mu
}

func (h *replicaHandler) Handle(ctx context.Context, m bot.Message, out bot.Responder) error {
	l := h.l
	l.mu.Lock()
	if other, ok := l.running[m.Chat.ID]; ok {
		l.overlap = append(l.overlap, fmt.Sprintf("%s while %s (chat %s, %s)", m.ID, other, m.Chat.ID, h.name))
	}
	l.running[m.Chat.ID] = m.ID
	h.begun++
	l.mu.Changed()
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.running, m.Chat.ID)
		l.mu.Changed()
		l.mu.Unlock()
	}()
	if h.block {
		<-ctx.Done()
		return ctx.Err()
	}
	for range 10 {
		runtime.Gosched() // give another replica the chance to run the chat's next message now
	}
	l.mu.Lock()
	l.answered[m.Chat.ID] = append(l.answered[m.Chat.ID], m.ID)
	if prev, ok := l.by[m.ID]; ok {
		l.overlap = append(l.overlap, fmt.Sprintf("%s answered twice (%s and %s)", m.ID, prev, h.name))
	}
	l.by[m.ID] = h.name
	l.mu.Changed()
	l.mu.Unlock()
	return nil
}

type replicaRig struct {
	t     *testing.T
	st    *store.Store
	clock *testClock
	l     *ledger
	ins   map[string]*bot.Intake
	hs    map[string]*replicaHandler
}

// newReplicaRig starts one intake per name on ONE store, each with its own handler, sharing a
// clock; they heartbeat and look for chats to adopt often, so the test waits little.
func newReplicaRig(t *testing.T, names ...string) *replicaRig {
	r := &replicaRig{t: t, st: openStore(t, filepath.Join(t.TempDir(), "cropshield.db")),
		clock: &testClock{now: time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)}, l: newLedger(),
		ins: map[string]*bot.Intake{}, hs: map[string]*replicaHandler{}}
	for _, name := range names {
		h := &replicaHandler{name: name, l: r.l}
		cfg := bot.IntakeConfig{Replica: name, Workers: 4, Clock: r.clock.Now, RetryDelay: time.Millisecond,
			HeartbeatEvery: 5 * time.Millisecond, AdoptEvery: 5 * time.Millisecond}
		in := bot.NewIntake(cfg, slog.New(slog.DiscardHandler), r.st, h)
		t.Cleanup(func() { _ = in.Stop(canceled()) }) // a held message is interrupted
		ch := &fakeChannel{platform: bot.Telegram, h: newScriptHandler(), photos: map[string][]byte{}}
		if _, err := in.Open(context.Background(), ch); err != nil {
			t.Fatal(name, err)
		}
		r.ins[name], r.hs[name] = in, h
	}
	return r
}

func (r *replicaRig) accept(name, chat, id string) {
	r.t.Helper()
	if err := r.ins[name].Accept(context.Background(), bot.Telegram, []bot.Message{tgText(chat, id, "x")}, 0); err != nil {
		r.t.Fatal(name, chat, id, err)
	}
}

// check: every chat answered its messages once each, in the order accepted, one at a time.
func (r *replicaRig) check(want map[string][]string) {
	r.t.Helper()
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	for chat, ids := range want {
		if got := r.l.answered[chat]; !slices.Equal(got, ids) {
			r.t.Errorf("chat %s answered %v, want %v", chat, got, ids)
		}
	}
	if len(r.l.overlap) > 0 {
		r.t.Errorf("%d of a chat's messages handled at once or twice: %v", len(r.l.overlap), r.l.overlap)
	}
}

// TestReplicasInboxIDsUnique: two intakes on one store (two replicas) accept a message each; both
// entries are in the inbox. With ids numbered per process both got id 0 and the second replaced
// the first: a message acknowledged to the platform was lost.
func TestReplicasInboxIDsUnique(t *testing.T) {
	r := newReplicaRig(t, "a", "b")
	r.hs["a"].block, r.hs["b"].block = true, true
	r.accept("a", "x", "1")
	r.accept("b", "y", "2")
	p, err := r.st.PendingInbox(context.Background(), string(bot.Telegram))
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 2 {
		t.Errorf("the inbox holds %d entries after two replicas accepted a message each, want 2", len(p))
	}
}

// TestReplicasChatOrder: two replicas on one store take a chat's messages alternately, for many
// chats at once: each message is answered once in all, each chat's in the order accepted, never
// two of a chat at once. Each replica handing in what it accepted ran a chat's messages on both
// at once, out of order.
func TestReplicasChatOrder(t *testing.T) {
	r := newReplicaRig(t, "a", "b")
	const chats, perChat = 8, 16
	want := map[string][]string{}
	var wg sync.WaitGroup
	for c := range chats {
		chat := fmt.Sprint("c", c)
		for i := range perChat {
			want[chat] = append(want[chat], fmt.Sprint(chat, "-", i))
		}
	}
	for c := range chats {
		chat, ids := fmt.Sprint("c", c), want[fmt.Sprint("c", c)]
		wg.Go(func() {
			for i, id := range ids {
				r.accept([]string{"a", "b"}[(i+c)%2], chat, id)
			}
		})
	}
	wg.Wait()
	r.l.mu.WaitFor(t, "every message answered", func() bool { return r.l.count() >= chats*perChat })
	for _, in := range r.ins {
		if err := in.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	r.check(want)
	if p, err := r.st.PendingInbox(context.Background(), string(bot.Telegram)); err != nil || len(p) != 0 {
		t.Errorf("inbox %d entries, %v; want none left", len(p), err)
	}
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	t.Logf("answered by a: %d, by b: %d", r.hs["a"].begun, r.hs["b"].begun)
}

// TestReplicasKilledReplicaAdopted: a replica killed (as with kill -9) while holding chats, with
// their first messages being handled and more queued or stored by the other replica, leaves
// them in the inbox; once its heartbeat is older than the lease TTL the other replica adopts
// the chats and answers every message once, in the order accepted. Before that it does not.
func TestReplicasKilledReplicaAdopted(t *testing.T) {
	r := newReplicaRig(t, "a", "b")
	r.hs["a"].block = true
	const chats, perChat = 4, 6
	want := map[string][]string{}
	for c := range chats {
		chat := fmt.Sprint("k", c)
		for i := range perChat {
			id := fmt.Sprint(chat, "-", i)
			want[chat] = append(want[chat], id)
			r.accept([]string{"a", "b"}[i%2], chat, id) // a takes each chat with its first message
		}
	}
	r.l.mu.WaitFor(t, "a handling each chat's first message", func() bool { return r.hs["a"].begun == chats })
	bot.KillIntake(r.ins["a"])
	// b holds none of them while a's heartbeat is fresh: its looks (every 5 ms) leave them.
	if err := r.ins["b"].WaitHandled(context.Background(), bot.Telegram, "k0", "k0-1"); err != nil {
		t.Fatal(err)
	}
	r.l.mu.Lock()
	begun := r.hs["b"].begun
	r.l.mu.Unlock()
	if begun != 0 {
		t.Fatalf("b handled %d messages of chats a holds while a's heartbeat is fresh", begun)
	}
	r.clock.Add(10 * time.Second) // the default LeaseTTL: a's heartbeat is now too old
	r.l.mu.WaitFor(t, "b answered every message", func() bool { return r.l.count() >= chats*perChat })
	if err := r.ins["b"].Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.check(want)
	if p, err := r.st.PendingInbox(context.Background(), string(bot.Telegram)); err != nil || len(p) != 0 {
		t.Errorf("inbox %d entries, %v; want none left", len(p), err)
	}
}

// TestReplicasRestartTakesBackAtOnce: a replica killed and started again under its name (a new
// incarnation) takes its chats back at once, without waiting for the TTL, and answers them.
func TestReplicasRestartTakesBackAtOnce(t *testing.T) {
	r := newReplicaRig(t, "a")
	r.hs["a"].block = true
	r.accept("a", "x", "1")
	r.accept("a", "x", "2")
	r.l.mu.WaitFor(t, "1 being handled", func() bool { return r.hs["a"].begun == 1 })
	bot.KillIntake(r.ins["a"])
	h := &replicaHandler{name: "a2", l: r.l}
	in := bot.NewIntake(bot.IntakeConfig{Replica: "a", Clock: r.clock.Now}, slog.New(slog.DiscardHandler), r.st, h)
	t.Cleanup(func() { _ = in.Stop(canceled()) })
	if _, err := in.Open(context.Background(), &fakeChannel{platform: bot.Telegram, h: newScriptHandler()}); err != nil {
		t.Fatal(err)
	}
	r.l.mu.WaitFor(t, "both answered after the restart", func() bool { return r.l.count() == 2 })
	r.check(map[string][]string{"x": {"1", "2"}})
}

// canceled is a context whose drain is over: a stop interrupts what runs.
func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// albumHandler records the albums it is handed (first message id → photos).
type albumHandler struct {
	mu     bottest.Guard
	albums map[string]int
}

func (h *albumHandler) Handle(_ context.Context, m bot.Message, _ bot.Responder) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(m.Album)
	if m.Photo != nil {
		n = 1
	}
	h.albums[m.ID] += n
	h.mu.Changed()
	return nil
}

// TestReplicasAlbumAcrossReplicas: the photos of one album reaching two replicas are answered as
// one album by the replica holding the chat: when its wait ends it looks for the photos the other
// stored. It answered the album without them (and them as a second album) when they came after
// its wait, as they may (the other's photos reach it only at its next look or accept).
func TestReplicasAlbumAcrossReplicas(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "cropshield.db"))
	h := &albumHandler{albums: map[string]int{}}
	ins := map[string]*bot.Intake{}
	for _, name := range []string{"a", "b"} {
		// The waits end only when the test says; no look in between.
		cfg := bot.IntakeConfig{Replica: name, AlbumWait: time.Hour, AdoptEvery: time.Hour}
		in := bot.NewIntake(cfg, slog.New(slog.DiscardHandler), st, h)
		t.Cleanup(func() { _ = in.Stop(canceled()) })
		if _, err := in.Open(context.Background(), &fakeChannel{platform: bot.Telegram, h: newScriptHandler()}); err != nil {
			t.Fatal(err)
		}
		ins[name] = in
	}
	photo := func(id string) bot.Message {
		m := tgText("g", id, "")
		m.Photo, m.AlbumID = &bot.Photo{Ref: "p" + id}, "A"
		return m
	}
	ctx := context.Background()
	if err := ins["a"].Accept(ctx, bot.Telegram, []bot.Message{photo("1")}, 0); err != nil {
		t.Fatal(err)
	}
	if err := ins["b"].Accept(ctx, bot.Telegram, []bot.Message{photo("2"), photo("3")}, 0); err != nil {
		t.Fatal(err)
	}
	bot.EndAlbumWaits(ins["a"]) // a finds 2 and 3: the album waits again
	bot.EndAlbumWaits(ins["a"])
	h.mu.WaitFor(t, "the album answered", func() bool { return len(h.albums) > 0 })
	if err := ins["a"].Stop(ctx); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.albums) != 1 || h.albums["1"] != 3 {
		t.Errorf("answered %v (first message → photos), want one album of 3 photos", h.albums)
	}
}

// TestReplicasClosedChannelLetsChatsGo: a replica whose channel closes while it keeps running
// (WhatsApp's lock lost: its adapter stops and another replica takes WhatsApp over) lets go the
// chats of that platform it holds with messages waiting, so that the replica now running the
// channel adopts them; a chat whose message is still being handled stays held until it ends.
// Kept, the leases stayed live with the replica's heartbeat and the waiting messages (and every
// later one of those chats) were never handed in by anyone.
func TestReplicasClosedChannelLetsChatsGo(t *testing.T) {
	r := newReplicaRig(t, "a")
	r.hs["a"].block = true
	for c := range 4 { // a's 4 workers each busy with a chat
		r.accept("a", fmt.Sprint("busy", c), "1")
	}
	r.l.mu.WaitFor(t, "4 messages being handled", func() bool { return r.hs["a"].begun == 4 })
	r.accept("a", "x", "1") // queued: no worker free
	r.ins["a"].Close(bot.Telegram)

	// Another replica, now running the channel, looks for chats nobody hands in.
	ctx := context.Background()
	c := store.Lessee{Replica: "c", Incarnation: "1", Now: r.clock.Now(), TTL: 10 * time.Second}
	if err := r.st.Heartbeat(ctx, c); err != nil {
		t.Fatal(err)
	}
	// A look of a's that began before the Close may take x again for a moment (it lets it go
	// once it sees the channel closed), so c looks again until it has x, as its own looks would.
	var chats []string
	for deadline := time.Now().Add(time.Minute); !slices.Contains(chats, "x") && time.Now().Before(deadline); {
		got, err := r.st.AdoptInbox(ctx, c, string(bot.Telegram))
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range got {
			chats = append(chats, u.Chat)
		}
		time.Sleep(time.Millisecond)
	}
	if !slices.Equal(chats, []string{"x"}) {
		t.Errorf("another replica adopts the chats %v after a's channel closed, want [x] (the busy ones stay with a until handled)", chats)
	}
}

// slowLooks is a store whose looks for chats to adopt block while stall is set (a look over a
// large backlog, or one waiting for the database), counting the heartbeats written meanwhile.
type slowLooks struct {
	*store.Store
	mu      bottest.Guard
	stall   chan struct{} // non-nil: looks wait until it is closed
	stalled bool          // a look is waiting
	beats   int
}

func (s *slowLooks) AdoptInbox(ctx context.Context, l store.Lessee, platform string) ([]store.InboxUpdate, error) {
	s.mu.Lock()
	stall := s.stall
	if stall != nil {
		s.stalled = true
		s.mu.Changed()
	}
	s.mu.Unlock()
	if stall != nil {
		<-stall
	}
	return s.Store.AdoptInbox(ctx, l, platform)
}

func (s *slowLooks) Heartbeat(ctx context.Context, l store.Lessee) error {
	err := s.Store.Heartbeat(ctx, l)
	s.mu.Lock()
	s.beats++
	s.mu.Changed()
	s.mu.Unlock()
	return err
}

// TestReplicasHeartbeatWhileLookIsSlow: the heartbeats go on while a look for chats to adopt is
// slow (its cost grows with the chats waiting in the inbox: about 0.5 s per platform with 4,000
// entries pending on PostgreSQL, and it waits for the database's write lock when it adopts).
// Written on the same loop after the looks, the heartbeat waited for them, and a replica whose
// looks took longer than the lease TTL had its chats adopted by the others while it was handling
// them.
func TestReplicasHeartbeatWhileLookIsSlow(t *testing.T) {
	st := &slowLooks{Store: openStore(t, filepath.Join(t.TempDir(), "cropshield.db"))}
	cfg := bot.IntakeConfig{Replica: "a", HeartbeatEvery: 5 * time.Millisecond, AdoptEvery: 5 * time.Millisecond}
	in := bot.NewIntake(cfg, slog.New(slog.DiscardHandler), st, newScriptHandler())
	if _, err := in.Open(context.Background(), &fakeChannel{platform: bot.Telegram, h: newScriptHandler()}); err != nil {
		t.Fatal(err)
	}
	stall := make(chan struct{})
	st.mu.Lock()
	st.stall = stall
	st.mu.Unlock()
	st.mu.WaitFor(t, "a look waiting", func() bool { return st.stalled })
	st.mu.Lock()
	beats := st.beats
	st.mu.Unlock()
	st.mu.WaitFor(t, "two heartbeats during the look", func() bool { return st.beats >= beats+2 })
	st.mu.Lock()
	st.stall = nil
	st.mu.Unlock()
	close(stall)
	if err := in.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// lateBeats is a store whose heartbeats wait while hold is set (a database stalled under the
// replica's heartbeat), counting those written.
type lateBeats struct {
	*store.Store
	mu      bottest.Guard
	hold    chan struct{}
	waiting bool
	beats   int
}

func (s *lateBeats) Heartbeat(ctx context.Context, l store.Lessee) error {
	s.mu.Lock()
	hold := s.hold
	s.waiting = hold != nil
	s.mu.Changed()
	s.mu.Unlock()
	if hold != nil {
		<-hold
	}
	err := s.Store.Heartbeat(ctx, l)
	s.mu.Lock()
	s.beats++
	s.mu.Changed()
	s.mu.Unlock()
	return err
}

// gatedHandler answers each message at once, but those in gate only once it is closed; it
// records who began what.
type gatedHandler struct {
	mu    bottest.Guard
	gate  map[string]chan struct{}
	begun []string
}

func (h *gatedHandler) Handle(ctx context.Context, m bot.Message, _ bot.Responder) error {
	h.mu.Lock()
	h.begun = append(h.begun, m.ID)
	g := h.gate[m.ID]
	h.mu.Changed()
	h.mu.Unlock()
	if g != nil {
		select {
		case <-g:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// TestReplicasLateHeartbeatLeavesWaitingMessages: a replica whose heartbeat came later than the
// lease TTL (its database stalled) may have lost its chats to another replica meanwhile: it
// leaves the messages waiting here to the inbox instead of handling them too. It handled the
// queued message of a chat the other replica had adopted, both at once.
func TestReplicasLateHeartbeatLeavesWaitingMessages(t *testing.T) {
	st := &lateBeats{Store: openStore(t, filepath.Join(t.TempDir(), "cropshield.db"))}
	clock := &testClock{now: time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)}
	gate := make(chan struct{})
	h := &gatedHandler{gate: map[string]chan struct{}{"1": gate}}
	cfg := bot.IntakeConfig{Replica: "a", Clock: clock.Now, HeartbeatEvery: 5 * time.Millisecond, AdoptEvery: 5 * time.Millisecond}
	in := bot.NewIntake(cfg, slog.New(slog.DiscardHandler), st, h)
	t.Cleanup(func() { _ = in.Stop(canceled()) })
	ctx := context.Background()
	if _, err := in.Open(ctx, &fakeChannel{platform: bot.Telegram, h: newScriptHandler()}); err != nil {
		t.Fatal(err)
	}
	if err := in.Accept(ctx, bot.Telegram, []bot.Message{tgText("x", "1", "a"), tgText("x", "2", "b")}, 0); err != nil {
		t.Fatal(err)
	}
	h.mu.WaitFor(t, "1 being handled", func() bool { return len(h.begun) == 1 })

	// The database stalls under a's heartbeat for longer than the TTL; another replica adopts x.
	hold := make(chan struct{})
	st.mu.Lock()
	st.hold = hold
	st.mu.Unlock()
	st.mu.WaitFor(t, "a heartbeat waiting", func() bool { return st.waiting })
	clock.Add(10 * time.Second)
	c := store.Lessee{Replica: "c", Incarnation: "1", Now: clock.Now(), TTL: 10 * time.Second}
	if err := st.Store.Heartbeat(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Store.AdoptInbox(ctx, c, string(bot.Telegram)); err != nil || len(got) != 2 {
		t.Fatalf("c adopted %d entries, %v; want x's 2", len(got), err)
	}
	st.mu.Lock()
	st.hold = nil
	beats := st.beats
	st.mu.Unlock()
	close(hold)
	st.mu.WaitFor(t, "a's heartbeats going again", func() bool { return st.beats >= beats+3 })
	close(gate) // 1 ends on a (c has it too: the turn records answer it once)
	if err := in.WaitHandled(ctx, bot.Telegram, "x", "2"); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if slices.Contains(h.begun, "2") {
		t.Errorf("a handled 2 after its late heartbeat, while c holds chat x (began %v)", h.begun)
	}
}
