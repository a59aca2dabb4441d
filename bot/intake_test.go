package bot_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/bot/bottest"
	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
)

// scriptHandler records what it handles and does what the test says for each message id: block
// until released, fail a number of times.
type scriptHandler struct {
	mu     bottest.Guard
	got    []bot.Message // every attempt, in order
	photos map[string][]byte
	block  map[string]chan struct{} // message id → closed to let it finish
	fails  map[string]int           // message id → attempts that fail
}

func newScriptHandler() *scriptHandler {
	return &scriptHandler{photos: map[string][]byte{},
		block: map[string]chan struct{}{}, fails: map[string]int{}}
}

var errFlaky = errors.New("store unavailable")

func (h *scriptHandler) Handle(ctx context.Context, m bot.Message, out bot.Responder) error {
	h.mu.Lock()
	h.got = append(h.got, m)
	block := h.block[m.ID]
	fail := h.fails[m.ID] > 0
	if fail {
		h.fails[m.ID]--
	}
	h.mu.Changed()
	h.mu.Unlock()
	if m.Photo != nil {
		data, err := m.Photo.Fetch(ctx)
		if err != nil {
			return err
		}
		h.mu.Lock()
		h.photos[m.ID] = data
		h.mu.Unlock()
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail {
		return errFlaky
	}
	return out.Send(ctx, bot.Reply{Chat: m.Chat, ReplyTo: m.ID, Text: "re " + m.Text})
}

func (h *scriptHandler) ids() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, m := range h.got {
		out = append(out, m.ID)
	}
	return out
}

// fakeChannel is a platform: it records replies and serves photos by ref.
type fakeChannel struct {
	platform bot.Platform
	h        *scriptHandler
	photos   map[string][]byte
	sent     []bot.Reply // guarded by h.mu
}

func (c *fakeChannel) Platform() bot.Platform { return c.platform }

// Send records the reply under the handler's lock, which WaitFor's conditions hold.
func (c *fakeChannel) Send(_ context.Context, r bot.Reply) error {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	c.sent = append(c.sent, r)
	c.h.mu.Changed()
	return nil
}

func (c *fakeChannel) FetchPhoto(_ context.Context, ref string, limit int64) ([]byte, error) {
	p, ok := c.photos[ref]
	if !ok {
		return nil, fmt.Errorf("no photo %q", ref)
	}
	if int64(len(p)) > limit {
		return nil, errors.New("too large")
	}
	return p, nil
}

// replies are the ids the replies answer; call with c.h.mu held (WaitFor's conditions) or
// after the intake stopped.
func (c *fakeChannel) replies() []string {
	var out []string
	for _, r := range c.sent {
		out = append(out, r.ReplyTo)
	}
	return out
}

type intakeEnv struct {
	t    *testing.T
	path string
	st   *store.Store
	h    *scriptHandler
	ch   *fakeChannel
	in   *bot.Intake
	cfg  bot.IntakeConfig
}

func newIntakeEnv(t *testing.T, cfg bot.IntakeConfig) *intakeEnv {
	e := &intakeEnv{t: t, path: filepath.Join(t.TempDir(), "cropshield.db"), h: newScriptHandler(), cfg: cfg}
	e.ch = &fakeChannel{platform: bot.Telegram, h: e.h, photos: map[string][]byte{}}
	e.st = openStore(t, e.path)
	e.start()
	t.Cleanup(func() {
		if e.in != nil {
			_ = e.in.Stop(context.Background())
		}
	})
	return e
}

func (e *intakeEnv) start() {
	e.in = bot.NewIntake(e.cfg, slog.New(slog.DiscardHandler), e.st, e.h)
	if _, err := e.in.Open(context.Background(), e.ch); err != nil {
		e.t.Fatal(err)
	}
}

func (e *intakeEnv) pending() []int64 {
	e.t.Helper()
	p, err := e.st.PendingInbox(context.Background(), string(bot.Telegram))
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []int64
	for _, u := range p {
		ids = append(ids, u.ID)
	}
	return ids
}

func tgText(chat, id, text string) bot.Message {
	return bot.Message{ID: id, Chat: bot.ChatRef{Platform: bot.Telegram, ID: chat, Kind: bot.Private},
		Sender: bot.Sender{ID: chat}, Text: text}
}

// TestIntakeOrderOnceAndCursor: messages of one chat are handled in order, each once, even when a
// batch is delivered again; the cursor is saved with the batch; answered messages leave the inbox.
func TestIntakeOrderOnceAndCursor(t *testing.T) {
	e := newIntakeEnv(t, bot.IntakeConfig{Workers: 4})
	ctx := context.Background()
	var batch []bot.Message
	for i := range 12 {
		batch = append(batch, tgText(fmt.Sprint("c", i%3), fmt.Sprint(i), "hello"))
	}
	if err := e.in.Accept(ctx, bot.Telegram, batch, 77); err != nil {
		t.Fatal(err)
	}
	if off, err := e.st.InboxOffset(ctx, string(bot.Telegram)); err != nil || off != 77 {
		t.Fatalf("offset %d, %v; want 77 saved with the batch", off, err)
	}
	e.h.mu.WaitFor(t, "12 replies", func() bool { return len(e.ch.replies()) == 12 })
	if err := e.in.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	got := e.h.ids()
	for c := range 3 {
		var order []string
		for _, id := range got {
			var n int
			fmt.Sscan(id, &n)
			if n%3 == c {
				order = append(order, id)
			}
		}
		want := []string{fmt.Sprint(c), fmt.Sprint(c + 3), fmt.Sprint(c + 6), fmt.Sprint(c + 9)}
		if !slices.Equal(order, want) {
			t.Errorf("chat c%d handled %v, want %v", c, order, want)
		}
	}
	if len(got) != 12 {
		t.Errorf("handled %d times, want 12: %v", len(got), got)
	}
	if p := e.pending(); len(p) != 0 {
		t.Errorf("inbox still holds %v after every message was answered", p)
	}
}

// TestIntakeBackPressure: a chat with ChatQueue messages waiting or being handled refuses more
// (TryAccept at once, Accept when its context ends) without storing them; other chats are not
// held up; room comes back once the chat's messages are answered.
func TestIntakeBackPressure(t *testing.T) {
	e := newIntakeEnv(t, bot.IntakeConfig{Workers: 2, ChatQueue: 2, Queue: 3})
	ctx := context.Background()
	release := make(chan struct{})
	e.h.block["1"] = release
	for _, id := range []string{"1", "2"} {
		if err := e.in.TryAccept(ctx, bot.Telegram, []bot.Message{tgText("a", id, "x")}, 0); err != nil {
			t.Fatal(err)
		}
	}
	e.h.mu.WaitFor(t, "message 1 running", func() bool { return len(e.h.got) == 1 })
	if err := e.in.TryAccept(ctx, bot.Telegram, []bot.Message{tgText("a", "3", "x")}, 0); !errors.Is(err, bot.ErrBusy) {
		t.Fatalf("third message of a full chat: %v, want ErrBusy", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := e.in.Accept(cctx, bot.Telegram, []bot.Message{tgText("a", "3", "x")}, 5); !errors.Is(err, bot.ErrBusy) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Accept on a full chat whose context ended: %v, want ErrBusy and Canceled", err)
	}
	if off, _ := e.st.InboxOffset(ctx, string(bot.Telegram)); off != 0 {
		t.Errorf("offset %d saved with a refused batch", off)
	}
	// Another chat still fits in the global bound (3), then the intake is full.
	if err := e.in.TryAccept(ctx, bot.Telegram, []bot.Message{tgText("b", "1", "x")}, 0); err != nil {
		t.Fatalf("another chat: %v", err)
	}
	if err := e.in.TryAccept(ctx, bot.Telegram, []bot.Message{tgText("c", "1", "x")}, 0); !errors.Is(err, bot.ErrBusy) {
		t.Fatalf("past the global bound: %v, want ErrBusy", err)
	}
	if n := len(e.pending()); n != 3 {
		t.Errorf("inbox holds %d messages, want the 3 accepted", n)
	}
	// A blocking Accept gets in once the chat's messages are answered.
	accepted := make(chan error, 1)
	go func() { accepted <- e.in.Accept(ctx, bot.Telegram, []bot.Message{tgText("a", "3", "x")}, 0) }()
	close(release)
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	e.h.mu.WaitFor(t, "every reply", func() bool { return len(e.ch.replies()) == 4 })
}

// TestIntakeRetry: a handler that fails (a store error) is retried with backoff and the message
// answered once; one that keeps failing stays in the inbox and is handed in at the next start.
func TestIntakeRetry(t *testing.T) {
	e := newIntakeEnv(t, bot.IntakeConfig{Retries: 3, RetryDelay: time.Millisecond})
	ctx := context.Background()
	e.h.fails["1"] = 2
	e.h.fails["2"] = 100
	if err := e.in.Accept(ctx, bot.Telegram, []bot.Message{tgText("a", "1", "x"), tgText("a", "2", "y"), tgText("a", "3", "z")}, 0); err != nil {
		t.Fatal(err)
	}
	e.h.mu.WaitFor(t, "message 3 answered", func() bool { return len(e.ch.sent) == 2 })
	if got, want := e.h.ids(), []string{"1", "1", "1", "2", "2", "2", "2", "3"}; !slices.Equal(got, want) {
		t.Errorf("attempts %v, want %v", got, want)
	}
	if got := e.ch.replies(); !slices.Equal(got, []string{"1", "3"}) {
		t.Errorf("replies to %v, want 1 and 3 once each", got)
	}
	if err := e.in.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if p := e.pending(); len(p) != 1 {
		t.Fatalf("inbox %v, want only the message that kept failing", p)
	}
	e.h.fails["2"] = 0
	e.start()
	e.h.mu.WaitFor(t, "message 2 answered after the restart", func() bool { return len(e.ch.sent) == 3 })
}

// TestIntakeStopDrains: Stop closes the gate (Accept returns ErrStopped, nothing stored), lets the
// message being handled finish, starts none of the queued ones and leaves them in the inbox; the
// next start hands them in, with their photos fetched by ref.
func TestIntakeStopDrains(t *testing.T) {
	e := newIntakeEnv(t, bot.IntakeConfig{Workers: 1})
	ctx := context.Background()
	release := make(chan struct{})
	e.h.block["1"] = release
	e.ch.photos["file-7"] = []byte("leaf")
	photo := tgText("a", "2", "")
	photo.Photo = &bot.Photo{Ref: "file-7", MIME: "image/jpeg"}
	if err := e.in.Accept(ctx, bot.Telegram, []bot.Message{tgText("a", "1", "x"), photo}, 0); err != nil {
		t.Fatal(err)
	}
	e.h.mu.WaitFor(t, "message 1 running", func() bool { return len(e.h.got) == 1 })
	stopped := make(chan error, 1)
	go func() { stopped <- e.in.Stop(ctx) }()
	// The gate closes at once: wait until a new message is refused.
	for {
		err := e.in.TryAccept(ctx, bot.Telegram, []bot.Message{tgText("b", "9", "late")}, 0)
		if errors.Is(err, bot.ErrStopped) {
			break
		}
		if err != nil && !errors.Is(err, bot.ErrBusy) {
			t.Fatal(err)
		}
		if err == nil {
			// Accepted before the gate closed: it is durable and must simply not start.
			break
		}
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if got := e.h.ids(); !slices.Equal(got, []string{"1"}) {
		t.Fatalf("handled %v during the drain, want only the running message 1", got)
	}
	if got := e.ch.replies(); !slices.Equal(got, []string{"1"}) {
		t.Fatalf("replies %v, want message 1's", got)
	}
	if err := e.in.TryAccept(ctx, bot.Telegram, []bot.Message{tgText("b", "10", "later")}, 0); !errors.Is(err, bot.ErrStopped) {
		t.Fatalf("after Stop: %v, want ErrStopped", err)
	}
	e.start()
	e.h.mu.WaitFor(t, "the photo answered after the restart", func() bool { return slices.Contains(e.ch.replies(), "2") })
	e.h.mu.Lock()
	defer e.h.mu.Unlock()
	if string(e.h.photos["2"]) != "leaf" {
		t.Errorf("photo after the restart: %q, want it fetched by its ref", e.h.photos["2"])
	}
}

// TestIntakeAlbum: the photos of an album are handed in as one message, before the sender's next
// message; an album nobody addressed in a group is not handled.
func TestIntakeAlbum(t *testing.T) {
	e := newIntakeEnv(t, bot.IntakeConfig{AlbumWait: time.Hour})
	ctx := context.Background()
	var batch []bot.Message
	for i, ref := range []string{"p1", "p2", "p3"} {
		e.ch.photos[ref] = []byte(ref)
		m := tgText("a", fmt.Sprint(10+i), "")
		if i == 1 {
			m.Text = "tomato"
		}
		m.Photo, m.AlbumID = &bot.Photo{Ref: ref}, "g1"
		batch = append(batch, m)
	}
	group := bot.ChatRef{Platform: bot.Telegram, ID: "-5", Kind: bot.Group}
	for i := range 2 {
		m := bot.Message{ID: fmt.Sprint(20 + i), Chat: group, Sender: bot.Sender{ID: "a"}, Photo: &bot.Photo{Ref: "p1"},
			AlbumID: "g2", Unaddressed: true}
		batch = append(batch, m)
	}
	if err := e.in.Accept(ctx, bot.Telegram, batch, 0); err != nil {
		t.Fatal(err)
	}
	// The album waits (AlbumWait is long) until the sender writes again in the chat.
	if err := e.in.Accept(ctx, bot.Telegram, []bot.Message{tgText("a", "13", "/help")}, 0); err != nil {
		t.Fatal(err)
	}
	e.h.mu.WaitFor(t, "album and text", func() bool { return len(e.ch.sent) == 2 })
	e.h.mu.Lock()
	got := slices.Clone(e.h.got)
	e.h.mu.Unlock()
	if len(got) != 2 || got[0].ID != "10" || len(got[0].Album) != 3 || got[0].Text != "tomato" || got[1].ID != "13" {
		t.Fatalf("handled %+v, want the album (3 photos, caption) as message 10, then 13", got)
	}
	if err := e.in.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// The group album was still being collected: it stays in the inbox. After a restart it is
	// collected again and, as none of its photos is addressed, finished without handling when
	// its sender writes again.
	if n := len(e.pending()); n != 2 {
		t.Fatalf("inbox holds %d entries after the stop, want the 2 photos of the group album", n)
	}
	e.start()
	after := bot.Message{ID: "30", Chat: group, Sender: bot.Sender{ID: "a"}, Text: "/help"}
	if err := e.in.Accept(ctx, bot.Telegram, []bot.Message{after}, 0); err != nil {
		t.Fatal(err)
	}
	e.h.mu.WaitFor(t, "the group text answered", func() bool { return len(e.ch.sent) == 3 })
	if err := e.in.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.h.ids(); !slices.Equal(got, []string{"10", "13", "30"}) {
		t.Errorf("handled %v, want the unaddressed group album left out", got)
	}
	if p := e.pending(); len(p) != 0 {
		t.Errorf("inbox still holds %v", p)
	}
}

// TestIntakeOpenAgainKeepsRunning: a channel opened again (its adapter's Run started anew) while
// one of its messages is being handled leaves that message's inbox entry alone: interrupted by a
// stop, it is still there for the next start.
func TestIntakeOpenAgainKeepsRunning(t *testing.T) {
	e := newIntakeEnv(t, bot.IntakeConfig{})
	ctx := context.Background()
	e.h.block["1"] = make(chan struct{}) // never released: the stop interrupts it
	if err := e.in.Accept(ctx, bot.Telegram, []bot.Message{tgText("a", "1", "x")}, 0); err != nil {
		t.Fatal(err)
	}
	e.h.mu.WaitFor(t, "message 1 running", func() bool { return len(e.h.got) == 1 })
	if _, err := e.in.Open(ctx, e.ch); err != nil {
		t.Fatal(err)
	}
	over, cancel := context.WithCancel(ctx)
	cancel()
	if err := e.in.Stop(over); err == nil {
		t.Error("Stop with its drain over returned nil, want the interruption reported")
	}
	if p := e.pending(); len(p) != 1 {
		t.Errorf("inbox %v after the interrupted message, want it kept for the next start", p)
	}
}

// TestIntakeAccepting: a channel accepts from the return of its Open until its Close or the
// intake's Stop; another platform's state is its own.
func TestIntakeAccepting(t *testing.T) {
	e := newIntakeEnv(t, bot.IntakeConfig{})
	ctx := context.Background()
	fresh := bot.NewIntake(bot.IntakeConfig{}, slog.New(slog.DiscardHandler), e.st, e.h)
	steps := []struct {
		name string
		do   func() error
		in   *bot.Intake
		p    bot.Platform
		want bool
	}{
		{"never opened", nil, fresh, bot.Telegram, false},
		{"after Open", nil, e.in, bot.Telegram, true},
		{"another platform", nil, e.in, bot.WhatsApp, false},
		{"after Close", func() error { e.in.Close(bot.Telegram); return nil }, e.in, bot.Telegram, false},
		{"opened again", func() error { _, err := e.in.Open(ctx, e.ch); return err }, e.in, bot.Telegram, true},
		{"after Stop", func() error { return e.in.Stop(ctx) }, e.in, bot.Telegram, false},
	}
	for _, s := range steps {
		if s.do != nil {
			if err := s.do(); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		}
		if got := s.in.Accepting(s.p); got != s.want {
			t.Errorf("%s: Accepting(%s) = %v, want %v", s.name, s.p, got, s.want)
		}
	}
}

// legacyChannel is a fakeChannel that translates the entries an earlier version stored: "old:ID"
// is the text message ID of chat a, "old:skip" is nothing to handle; anything else is unknown.
type legacyChannel struct{ *fakeChannel }

func (c legacyChannel) DecodeLegacy(_ context.Context, data []byte) ([]bot.Message, bool) {
	id, ok := strings.CutPrefix(string(data), "old:")
	switch {
	case !ok:
		return nil, false
	case id == "skip":
		return nil, true
	}
	return []bot.Message{tgText("a", id, "legacy")}, true
}

// TestIntakeLegacyInbox: at the first start after an upgrade, the entries the previous version
// stored in its own format are not lost: the channel translates those it knows (handed in,
// then removed; nothing to handle: removed) and the rest stays in the inbox; a restart does not
// drop them either.
func TestIntakeLegacyInbox(t *testing.T) {
	for _, tc := range []struct {
		name    string
		legacy  bool
		handled []string
		left    []int64
	}{
		// Without the ability nothing can be read: everything stays.
		{name: "plain channel", handled: nil, left: []int64{900, 901, 902}},
		{name: "legacy channel", legacy: true, handled: []string{"7"}, left: []int64{902}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newIntakeEnv(t, bot.IntakeConfig{})
			ctx := context.Background()
			if err := e.in.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			old := []store.InboxUpdate{{ID: 900, Data: []byte("old:7")}, {ID: 901, Data: []byte("old:skip")}, {ID: 902, Data: []byte(`{"update_id":902}`)}}
			if err := e.st.SaveInbox(ctx, "telegram", old, 903); err != nil {
				t.Fatal(err)
			}
			for range 2 { // a second start finds what the first left
				var ch bot.Channel = e.ch
				if tc.legacy {
					ch = legacyChannel{e.ch}
				}
				e.in = bot.NewIntake(e.cfg, slog.New(slog.DiscardHandler), e.st, e.h)
				if _, err := e.in.Open(ctx, ch); err != nil {
					t.Fatal(err)
				}
				for _, id := range tc.handled {
					if err := e.in.WaitHandled(ctx, bot.Telegram, "a", id); err != nil {
						t.Fatal(err)
					}
				}
				if err := e.in.Stop(ctx); err != nil { // writes the marks
					t.Fatal(err)
				}
				if got := e.pending(); !slices.Equal(got, tc.left) {
					t.Errorf("inbox %v, want %v", got, tc.left)
				}
			}
			e.in = nil
			if got := e.h.ids(); !slices.Equal(got, tc.handled) {
				t.Errorf("handled %v, want %v (once)", got, tc.handled)
			}
		})
	}
}

// TestIntakeWaitHandled: a wait for a message still queued when Stop ran returns at once (the
// message is left in the inbox: it is not handled in this run), and a wait whose ctx ended
// leaves nothing behind.
func TestIntakeWaitHandled(t *testing.T) {
	e := newIntakeEnv(t, bot.IntakeConfig{})
	ctx := context.Background()
	e.h.block["1"] = make(chan struct{}) // never released: the stop interrupts it
	if err := e.in.Accept(ctx, bot.Telegram, []bot.Message{tgText("a", "1", "x"), tgText("a", "2", "y")}, 0); err != nil {
		t.Fatal(err)
	}
	e.h.mu.WaitFor(t, "1 running", func() bool { return len(e.h.got) == 1 })
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if err := e.in.WaitHandled(ended, bot.Telegram, "a", "2"); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitHandled with its ctx ended: %v, want context.Canceled", err)
	}
	if n := bot.IntakeWaiters(e.in, bot.Telegram, "a", "2"); n != 0 {
		t.Errorf("%d waiters left behind by an abandoned WaitHandled, want 0", n)
	}
	_ = e.in.Stop(ended) // the drain is over at once: 1 is interrupted, 2 stays queued
	// A guard against a hang, not a time limit: the wait must return at once.
	guard, cancelGuard := context.WithTimeout(ctx, time.Minute)
	defer cancelGuard()
	if err := e.in.WaitHandled(guard, bot.Telegram, "a", "2"); err != nil {
		t.Errorf("WaitHandled after Stop for a message left queued: %v, want nil at once", err)
	}
	if p := e.pending(); len(p) != 2 {
		t.Errorf("inbox %v after the stop, want both messages kept", p)
	}
}

// TestIntakeAlbumNotSplitByBackPressure: the later photos of an album still being collected are
// taken although the chat is at its bound (they do not count against it), so that the album is
// answered once, whole; without that they waited for room, the album was handed in without
// them and they became a second album, answered apart.
func TestIntakeAlbumNotSplitByBackPressure(t *testing.T) {
	e := newIntakeEnv(t, bot.IntakeConfig{ChatQueue: 3, AlbumWait: time.Hour})
	ctx := context.Background()
	ph := func(id, ref string) bot.Message {
		e.ch.photos[ref] = []byte(ref)
		m := tgText("a", id, "")
		m.Photo, m.AlbumID = &bot.Photo{Ref: ref}, "A"
		return m
	}
	e.h.block["1"] = make(chan struct{})
	release := sync.OnceFunc(func() { close(e.h.block["1"]) })
	defer release() // a failure before it does not leave the stop waiting for 1
	if err := e.in.Accept(ctx, bot.Telegram, []bot.Message{tgText("a", "1", "x")}, 0); err != nil {
		t.Fatal(err)
	}
	e.h.mu.WaitFor(t, "1 running", func() bool { return len(e.h.got) == 1 })
	if err := e.in.Accept(ctx, bot.Telegram, []bot.Message{ph("10", "p1")}, 0); err != nil {
		t.Fatal(err)
	}
	// The chat holds 2 of its 3: the album's two other photos are taken at once (TryAccept: no
	// wait); the sender's text after them completes the album (AlbumWait is long) and fits.
	if err := e.in.TryAccept(ctx, bot.Telegram, []bot.Message{ph("11", "p2"), ph("12", "p3"), tgText("a", "13", "y")}, 0); err != nil {
		t.Fatalf("the rest of an album being collected: %v, want taken", err)
	}
	// The bound still holds for other messages.
	if err := e.in.TryAccept(ctx, bot.Telegram, []bot.Message{tgText("a", "14", "z")}, 0); !errors.Is(err, bot.ErrBusy) {
		t.Errorf("a text past the chat's bound: %v, want ErrBusy", err)
	}
	release()
	e.h.mu.WaitFor(t, "1, the album and 13", func() bool { return len(e.ch.sent) == 3 })
	e.h.mu.Lock()
	got := slices.Clone(e.h.got)
	e.h.mu.Unlock()
	if len(got) != 3 || got[1].ID != "10" || len(got[1].Album) != 3 || got[2].ID != "13" {
		t.Fatalf("handled %v, want 1, the album as message 10 (3 photos), 13", e.h.ids())
	}
}

// panicChatStore is a store whose chat records make the handler panic, before it recorded the
// message.
type panicChatStore struct{ bot.Store }

func (panicChatStore) GetChat(context.Context, string, string) (store.Chat, error) {
	panic("broken chat record")
}

// TestIntakeDropsPanickedMessage: a message on which the handler panics before recording it is
// reported as bot.ErrPanic, and the intake drops it after logging instead of retrying it and
// keeping it in the inbox for ever (it would panic at every start).
func TestIntakeDropsPanickedMessage(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "cropshield.db"))
	loc, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	h, err := bot.NewHandler(bot.Config{}, log, panicChatStore{st}, testenv.ContractSession(t), loc, bot.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	ch := &fakeChannel{platform: bot.Telegram, h: newScriptHandler(), photos: map[string][]byte{}}
	if err := h.Handle(ctx, tgText("a", "1", "/help"), ch); !errors.Is(err, bot.ErrPanic) {
		t.Errorf("Handle panicking before the message was recorded: %v, want bot.ErrPanic", err)
	}
	in := bot.NewIntake(bot.IntakeConfig{RetryDelay: time.Millisecond}, log, st, h)
	defer func() { _ = in.Stop(ctx) }()
	if _, err := in.Open(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if err := in.Accept(ctx, bot.Telegram, []bot.Message{tgText("a", "2", "/help")}, 0); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitHandled(ctx, bot.Telegram, "a", "2"); err != nil {
		t.Fatal(err)
	}
	if err := in.Stop(ctx); err != nil { // writes the marks
		t.Fatal(err)
	}
	p, err := st.PendingInbox(ctx, string(bot.Telegram))
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 0 {
		t.Errorf("the inbox keeps %d entries after the panic, want the message dropped", len(p))
	}
}

// TestIntakeAlbumsOfOneSenderInOrder: albums of one sender handed in together (one batch; after a
// restart, or another replica's, all at once) are answered in the order sent, though their waits
// end at about the same moment: each ran on its own timer and the later album could go first.
func TestIntakeAlbumsOfOneSenderInOrder(t *testing.T) {
	e := newIntakeEnv(t, bot.IntakeConfig{Workers: 4, AlbumWait: time.Millisecond})
	ctx := context.Background()
	var batch []bot.Message
	var want []string
	for a := range 30 {
		for i := range 2 {
			id := fmt.Sprint(100 + 2*a + i)
			ref := "p" + id
			e.ch.photos[ref] = []byte(ref)
			m := tgText("a", id, "")
			m.Photo, m.AlbumID = &bot.Photo{Ref: ref}, fmt.Sprint("A", a)
			batch = append(batch, m)
			if i == 0 {
				want = append(want, id)
			}
		}
	}
	if err := e.in.Accept(ctx, bot.Telegram, batch, 0); err != nil {
		t.Fatal(err)
	}
	e.h.mu.WaitFor(t, "every album answered", func() bool { return len(e.ch.sent) == len(want) })
	if got := e.ch.replies(); !slices.Equal(got, want) {
		t.Errorf("albums answered in the order %v, want %v", got, want)
	}
}
