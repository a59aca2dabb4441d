// Package bottest is the conformance suite every channel adapter passes: an adapter's test gives
// Run a Driver for its fake platform, and the suite checks, through the adapter, the one intake
// and the real handler (the contract model, a bbolt store in a temp dir), what every channel must
// do: a photo and a text are each answered once; a message the platform delivers again after it
// was answered is not answered twice; a chat's messages are handled in order; a chat's full queue
// pushes back; a handling that fails on a store error is retried and answered once; a stop lets
// the message being handled finish, starts no other and leaves it for the next start.
package bottest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
)

// Env is what the suite gives a driver to run its adapter with.
type Env struct {
	Intake *bot.Intake
	Moves  *bot.Moves
	Log    *slog.Logger
}

// Driver runs one adapter on a fake of its platform. Chats are numbered by the suite (a private
// chat per number, its farmer writing); texts are unique within a subtest.
type Driver interface {
	// Start runs the adapter's Run on env.Intake and returns once it receives messages; stop
	// cancels Run and waits for it (Run must return nil).
	Start(t *testing.T, env Env) (stop func())
	// Text has the platform deliver a text from chat's farmer. It returns at once: the adapter
	// may push back (waiting, or answering "busy"); messages of one chat reach the adapter in
	// the order they were sent.
	Text(t *testing.T, chat int, text string)
	// Photo has the platform deliver a JPEG with a caption from chat's farmer, as Text.
	Photo(t *testing.T, chat int, caption string, jpeg []byte)
	// Redeliver has the platform deliver the message with this text again, as a platform does
	// when it did not get the acknowledgement; false if the platform never does that.
	Redeliver(t *testing.T, chat int, text string) bool
	// Offered is how many of chat's messages the platform has handed to the adapter so far
	// (delivered by the fake; the adapter may still be waiting for room to accept them).
	Offered(chat int) int
	// Delivered is how many messages the platform got from the bot in chat so far.
	Delivered(chat int) int
	// Refused is how many of chat's messages the adapter turned away with "busy, try again"
	// (they are not handed in); a platform that waits instead refuses none.
	Refused(chat int) int
}

// Run runs the suite against the adapter d drives.
func Run(t *testing.T, d func(t *testing.T) Driver) {
	t.Run("PhotoAndTextAnsweredOnce", func(t *testing.T) { photoAndText(t, d(t)) })
	t.Run("RedeliveredNotAnsweredTwice", func(t *testing.T) { redelivered(t, d(t)) })
	t.Run("ChatOrder", func(t *testing.T) { chatOrder(t, d(t)) })
	t.Run("ChatBoundPushesBack", func(t *testing.T) { chatBound(t, d(t)) })
	t.Run("TransientFailureRetried", func(t *testing.T) { retried(t, d(t)) })
	t.Run("StopDrains", func(t *testing.T) { stopDrains(t, d(t)) })
}

// suite is one subtest's bot: the real handler behind a recorder, the intake, the store.
type suite struct {
	t   *testing.T
	st  *store.Store
	rec *recorder
	in  *bot.Intake
	d   Driver
}

func newSuite(t *testing.T, d Driver, cfg bot.IntakeConfig) *suite {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "cropshield.db"), store.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	loc, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	// ClearCropShare -1: the contract model is unsure between crops on synthetic leaves; the
	// suite wants one answer per photo, not the crop question.
	h, err := bot.NewHandler(bot.Config{Threshold: 0.01, Burst: 1 << 20, ClearCropShare: -1}, log, st,
		testenv.ContractSession(t), loc, bot.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = time.Millisecond
	}
	s := &suite{t: t, st: st, rec: newRecorder(h), d: d}
	s.in = bot.NewIntake(cfg, log, st, s.rec)
	stop := d.Start(t, Env{Intake: s.in, Moves: bot.NewMoves(st), Log: log})
	t.Cleanup(func() {
		if err := s.in.Stop(context.Background()); err != nil { // again: harmless
			t.Error(err)
		}
		stop()
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// photoAndText: a text and a photo from two chats are each answered once, and the answers reach
// the platform.
func photoAndText(t *testing.T, d Driver) {
	s := newSuite(t, d, bot.IntakeConfig{})
	d.Text(t, 1, "t1")
	d.Photo(t, 2, "p1", testenv.LeafJPEG(t, 320, 240, 7))
	s.rec.mu.WaitFor(t, "both answered", func() bool { return s.rec.doneLocked("t1") >= 1 && s.rec.doneLocked("p1") >= 1 })
	s.stop()
	for _, text := range []string{"t1", "p1"} {
		if n := s.rec.replies(text); n != 1 {
			t.Errorf("%s: %d answers, want 1", text, n)
		}
	}
	if d.Delivered(1) == 0 || d.Delivered(2) == 0 {
		t.Errorf("the platform got %d and %d messages from the bot in the two chats, want the answers", d.Delivered(1), d.Delivered(2))
	}
	if k := s.rec.kind("p1"); k != "diagnosis" && k != "unsure" && k != "not_leaf" && k != "unknown_crop" {
		t.Errorf("the photo's answer is a %q, want a diagnosis", k)
	}
}

// redelivered: a message the platform delivers again after it was answered is handed to the
// handler again and not answered twice.
func redelivered(t *testing.T, d Driver) {
	s := newSuite(t, d, bot.IntakeConfig{})
	d.Text(t, 1, "r1")
	s.rec.mu.WaitFor(t, "r1 answered", func() bool { return s.rec.doneLocked("r1") == 1 })
	// Finished in the intake too (a delivery while it is in flight is not handed in twice).
	m := s.rec.message("r1")
	if err := s.in.WaitHandled(context.Background(), m.Chat.Platform, m.Chat.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	before := d.Delivered(1)
	if !d.Redeliver(t, 1, "r1") {
		t.Skip("this platform never delivers a message again")
	}
	s.rec.mu.WaitFor(t, "r1 handed in again", func() bool { return s.rec.doneLocked("r1") == 2 })
	s.stop()
	if n := s.rec.replies("r1"); n != 1 {
		t.Errorf("r1: %d answers, want 1", n)
	}
	if after := d.Delivered(1); after != before {
		t.Errorf("the platform got %d messages after the redelivery, %d before", after, before)
	}
}

// chatOrder: a chat's messages reach the handler in the order they were sent, one at a time.
func chatOrder(t *testing.T, d Driver) {
	s := newSuite(t, d, bot.IntakeConfig{Workers: 4})
	var want []string
	for i := range 6 {
		for chat := 1; chat <= 2; chat++ {
			text := fmt.Sprintf("o%d-%d", chat, i)
			d.Text(t, chat, text)
			if chat == 1 {
				want = append(want, text)
			}
		}
	}
	s.rec.mu.WaitFor(t, "every message answered", func() bool { return len(s.rec.finished) == 12 })
	s.stop()
	if got := s.rec.order(1); !slices.Equal(got, want) {
		t.Errorf("chat 1 handled %v, want %v", got, want)
	}
	if s.rec.overlap {
		t.Error("two messages of one chat were handled at once")
	}
}

// chatBound: while a chat's first message is held and its second waits, the chat's queue is full
// (ChatQueue 2): the messages the platform hands over next do not get into the intake: they wait
// at the platform or are answered "busy". Once released, every message is answered once or was
// refused, in the order sent.
func chatBound(t *testing.T, d Driver) {
	const bound = 2
	s := newSuite(t, d, bot.IntakeConfig{ChatQueue: bound})
	release := s.rec.hold("b0")
	texts := []string{"b0", "b1", "b2", "b3"}
	d.Text(t, 1, "b0")
	s.rec.mu.WaitFor(t, "b0 held", func() bool { return s.rec.started["b0"] == 1 })
	d.Text(t, 1, "b1")
	s.waitPending(t, func(n int) bool { return n == bound })
	d.Text(t, 1, "b2")
	d.Text(t, 1, "b3")
	// b2 handed over: the adapter holds it at the platform (waiting for room) or answered "busy".
	waitUntil(t, "the platform handed over b2", func() bool { return d.Offered(1) >= 3 || d.Refused(1) >= 1 })
	if n := s.pending(t); n > bound {
		t.Errorf("the chat has %d messages in the intake while its first is held, bound %d", n, bound)
	}
	if got := s.rec.order(1); len(got) != 1 {
		t.Errorf("handled %v while the first is held", got)
	}
	close(release)
	waitUntil(t, "every message answered or refused", func() bool {
		s.rec.mu.Lock()
		defer s.rec.mu.Unlock()
		return len(s.rec.finished)+d.Refused(1) >= len(texts)
	})
	s.stop()
	got := s.rec.order(1)
	if len(got)+d.Refused(1) != len(texts) {
		t.Errorf("handled %v and refused %d, want each of %v once", got, d.Refused(1), texts)
	}
	if !slices.IsSortedFunc(got, func(a, b string) int { return slices.Index(texts, a) - slices.Index(texts, b) }) {
		t.Errorf("handled %v out of order", got)
	}
	for _, text := range got {
		if n := s.rec.replies(text); n != 1 {
			t.Errorf("%s: %d answers, want 1", text, n)
		}
	}
}

// retried: the handler's first attempt fails on a store error; the intake hands the message in
// again and it is answered once.
func retried(t *testing.T, d Driver) {
	s := newSuite(t, d, bot.IntakeConfig{})
	s.rec.failFirst("f1")
	d.Text(t, 1, "f1")
	s.rec.mu.WaitFor(t, "f1 answered", func() bool { return s.rec.replyCountLocked("f1") >= 1 })
	s.stop()
	if n := s.rec.started["f1"]; n != 2 {
		t.Errorf("f1 handed in %d times, want 2 (a failure, then the retry)", n)
	}
	if n := s.rec.replies("f1"); n != 1 {
		t.Errorf("f1: %d answers, want 1", n)
	}
}

// stopDrains: at a stop the message being handled finishes and is answered; the chat's next one
// does not start and stays in the inbox for the next start.
func stopDrains(t *testing.T, d Driver) {
	s := newSuite(t, d, bot.IntakeConfig{})
	release := s.rec.hold("s0")
	d.Text(t, 1, "s0")
	d.Text(t, 1, "s1")
	s.rec.mu.WaitFor(t, "s0 held", func() bool { return s.rec.started["s0"] == 1 })
	s.waitPending(t, func(n int) bool { return n == 2 })
	stopped := make(chan error, 1)
	go func() { stopped <- s.in.Stop(context.Background()) }()
	<-s.in.Stopping()
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if n := s.rec.replies("s0"); n != 1 {
		t.Errorf("s0: %d answers, want 1 (it was being handled)", n)
	}
	if n := s.rec.started["s1"]; n != 0 {
		t.Errorf("s1 started %d times after the stop", n)
	}
	if n := s.pending(t); n != 1 {
		t.Errorf("inbox holds %d messages after the stop, want s1", n)
	}
}

func (s *suite) stop() {
	s.t.Helper()
	if err := s.in.Stop(context.Background()); err != nil {
		s.t.Error(err)
	}
}

// pending counts the messages of the driver's platform in the inbox.
func (s *suite) pending(t *testing.T) int {
	t.Helper()
	n := 0
	for _, p := range []bot.Platform{bot.Telegram, bot.WhatsApp, bot.WebChat} {
		us, err := s.st.PendingInbox(context.Background(), string(p))
		if err != nil {
			t.Fatal(err)
		}
		n += len(us)
	}
	return n
}

// waitPending polls the inbox until cond holds.
func (s *suite) waitPending(t *testing.T, cond func(n int) bool) {
	t.Helper()
	waitUntil(t, "the inbox", func() bool { return cond(s.pending(t)) })
}

// waitUntil polls cond until it holds; the deadline only turns a hang into a readable failure.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// recorder wraps the real handler: it records each Handle (by the message's text, unique in a
// subtest) and the replies it sends, can hold a message until released, and can fail a
// message's first attempt as a store error would.
type recorder struct {
	h bot.MessageHandler

	mu       Guard
	started  map[string]int         // text → Handle calls
	done     map[string]int         // text → Handle calls returned
	sent     map[string][]bot.Reply // text → replies
	byChat   map[string][]string    // chat id → texts in the order Handle began
	msgs     map[string]bot.Message // text → the message as first handed in
	finished []string               // texts whose handling returned nil, in order
	running  map[string]bool        // chat id → a Handle is running
	overlap  bool
	holds    map[string]chan struct{}
	fails    map[string]bool
}

func newRecorder(h bot.MessageHandler) *recorder {
	return &recorder{h: h, started: map[string]int{}, done: map[string]int{},
		sent: map[string][]bot.Reply{}, byChat: map[string][]string{}, msgs: map[string]bot.Message{},
		running: map[string]bool{}, holds: map[string]chan struct{}{}, fails: map[string]bool{}}
}

var errStore = errors.New("bottest: store unavailable")

func (r *recorder) Handle(ctx context.Context, m bot.Message, out bot.Responder) error {
	key := m.Text
	r.mu.Lock()
	r.started[key]++
	if r.started[key] == 1 {
		r.byChat[m.Chat.ID] = append(r.byChat[m.Chat.ID], key)
		r.msgs[key] = m
	}
	r.overlap = r.overlap || r.running[m.Chat.ID]
	r.running[m.Chat.ID] = true
	hold, fail := r.holds[key], r.fails[key]
	delete(r.fails, key)
	r.mu.Changed()
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.running[m.Chat.ID] = false
		r.done[key]++
		r.mu.Changed()
		r.mu.Unlock()
	}()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail {
		return errStore
	}
	err := r.h.Handle(ctx, m, responder(func(ctx context.Context, rep bot.Reply) error {
		if err := out.Send(ctx, rep); err != nil {
			return err
		}
		r.mu.Lock()
		r.sent[key] = append(r.sent[key], rep)
		r.mu.Changed()
		r.mu.Unlock()
		return nil
	}))
	if err == nil {
		r.mu.Lock()
		if !slices.Contains(r.finished, key) {
			r.finished = append(r.finished, key)
		}
		r.mu.Unlock()
	}
	return err
}

type responder func(ctx context.Context, r bot.Reply) error

func (f responder) Send(ctx context.Context, r bot.Reply) error { return f(ctx, r) }

func (r *recorder) hold(text string) chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan struct{})
	r.holds[text] = ch
	return ch
}

func (r *recorder) failFirst(text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fails[text] = true
}

func (r *recorder) doneLocked(text string) int       { return r.done[text] }
func (r *recorder) replyCountLocked(text string) int { return len(r.sent[text]) }

func (r *recorder) replies(text string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sent[text])
}

func (r *recorder) message(text string) bot.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msgs[text]
}

func (r *recorder) kind(text string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.sent[text]; len(s) > 0 {
		return string(s[0].Kind)
	}
	return ""
}

// order is the texts of the chat that holds the first text the suite sent to chat n: the suite's
// chat numbers are the driver's, so the recorder finds the chat by a text sent there.
func (r *recorder) order(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, texts := range r.byChat {
		if len(texts) > 0 && chatOf(texts[0]) == n {
			return slices.Clone(texts)
		}
	}
	return nil
}

// chatOf reads the suite's chat number from a text: "o2-3" is chat 2, every other text is chat 1.
func chatOf(text string) int {
	var chat, i int
	if _, err := fmt.Sscanf(text, "o%d-%d", &chat, &i); err == nil {
		return chat
	}
	return 1
}
