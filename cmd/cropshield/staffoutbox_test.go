package main

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/internal/pgtest"
	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
)

// fakeWhatsApp is a WhatsApp-like adapter: it sends only while its Run runs, on the replica
// holding its lock, as the real one's connection does.
type fakeWhatsApp struct {
	mu      sync.Mutex
	running bool
	sent    []bot.Reply
}

func (f *fakeWhatsApp) Platform() bot.Platform { return bot.WhatsApp }

func (f *fakeWhatsApp) FetchPhoto(context.Context, string, int64) ([]byte, error) {
	return nil, errors.New("no photos here")
}

func (f *fakeWhatsApp) SendsHere() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running
}

func (f *fakeWhatsApp) Send(_ context.Context, r bot.Reply) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.running {
		return errors.New("whatsapp: not running on this replica")
	}
	f.sent = append(f.sent, r)
	return nil
}

func (f *fakeWhatsApp) Run(ctx context.Context, _ *bot.Intake) error {
	f.mu.Lock()
	f.running = true
	f.mu.Unlock()
	<-ctx.Done()
	f.mu.Lock()
	f.running = false
	f.mu.Unlock()
	return nil
}

func (f *fakeWhatsApp) replies() []bot.Reply {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]bot.Reply(nil), f.sent...)
}

// outboxReplica is one replica for the test: its store handle, its fake WhatsApp run as serve
// runs it (adapterRun: under the lock, with the staff outbox's delivery) and its dashboard.
type outboxReplica struct {
	st     *store.Store
	wa     *fakeWhatsApp
	review string // the dashboard's base URL
	mu     sync.Mutex
	state  string
}

func (r *outboxReplica) stateIs(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state == s
}

func startOutboxReplica(t *testing.T, db string) *outboxReplica {
	t.Helper()
	st, err := store.Open(t.Context(), db, store.Options{})
	must(t, "open the database", err)
	t.Cleanup(func() { _ = st.Close() })
	loc, err := locales.Load()
	must(t, "load the locales", err)
	r := &outboxReplica{st: st, wa: &fakeWhatsApp{}}
	log := slog.New(slog.DiscardHandler)
	review, err := startReview(t.Context(), reviewConfig{addr: "127.0.0.1:0", ready: func(addr string) { r.review = "http://" + addr }},
		log, st, loc, inference.Info{Classes: []string{"tomato__healthy"}, Version: "test"}, []bot.Adapter{r.wa})
	must(t, "start the dashboard", err)
	t.Cleanup(func() { _ = review.shutdown(context.Background()) })
	return r
}

// runWhatsApp runs the replica's WhatsApp as serve does until the returned stop is called.
func (r *outboxReplica) runWhatsApp(t *testing.T) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	run := adapterRun(slog.New(slog.DiscardHandler), r.st, r.wa, nil, "whatsapp:254700000001",
		func(s string) { r.mu.Lock(); r.state = s; r.mu.Unlock() })
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("WhatsApp's run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// staffClient is a browser without JavaScript logged in on a dashboard: cookies, no redirects
// followed.
type staffClient struct {
	t    *testing.T
	c    *http.Client
	base string
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (s *staffClient) get(path string) (string, string) {
	s.t.Helper()
	resp, err := s.c.Get(s.base + path)
	must(s.t, "GET "+path, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(s.t, "read "+path, err)
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("GET %s: %s", path, resp.Status)
	}
	token := ""
	if m := csrfField.FindSubmatch(b); m != nil {
		token = string(m[1])
	}
	return string(b), token
}

// post posts form with the page's CSRF token and returns where it redirects.
func (s *staffClient) post(page, path string, form url.Values) string {
	s.t.Helper()
	_, token := s.get(page)
	form.Set("csrf", token)
	resp, err := s.c.PostForm(s.base+path, form)
	must(s.t, "POST "+path, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		s.t.Fatalf("POST %s: %s", path, resp.Status)
	}
	return resp.Header.Get("Location")
}

func loginStaff(t *testing.T, base, name, pass string) *staffClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	must(t, "cookie jar", err)
	s := &staffClient{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if loc := s.post("/login", "/login", url.Values{"name": {name}, "password": {pass}}); strings.Contains(loc, "login") {
		t.Fatalf("login as %s: redirected to %s", name, loc)
	}
	return s
}

// TestStaffReplyFromStandbyReplica: two replicas on one PostgreSQL, WhatsApp running on A; an
// agent's reply posted on B's dashboard (where WhatsApp stands by) reaches the farmer through A,
// and B's dashboard says it was sent; the conversation logs it once. With WhatsApp running
// nowhere, B says the reply is queued, and it goes out when a replica runs WhatsApp again.
func TestStaffReplyFromStandbyReplica(t *testing.T) {
	db := pgtest.URL(t)
	must(t, "staff add", staffCmd(t.Context(), []string{"add", "alice", "--role", "agent", "--db", db}, strings.NewReader(staffPassword+"\n"), io.Discard, io.Discard))
	a, b := startOutboxReplica(t, db), startOutboxReplica(t, db)
	stopA := a.runWhatsApp(t)
	eventually(t, "A runs WhatsApp", a.wa.SendsHere)
	stopB := b.runWhatsApp(t)
	eventually(t, "B stands by", func() bool { return b.stateIs("standby") })

	// A farmer wrote on WhatsApp (handled by A).
	const farmer = "254712345678"
	_, err := a.st.AppendMessage(t.Context(), store.Record{Time: time.Now(), Platform: "whatsapp", ChatID: farmer,
		Direction: store.Inbound, SenderID: farmer, Text: "My maize has brown spots", Lang: "en"})
	must(t, "log the farmer's message", err)
	conv := "/conversations/" + base64.RawURLEncoding.EncodeToString([]byte("whatsapp\x00"+farmer)) // dashboard.conversationID

	agent := loginStaff(t, b.review, "alice", staffPassword)
	loc := agent.post(conv, conv+"/reply", url.Values{"text": {"Spray copper in the evening."}, "sign": {"Ann"}})
	if !strings.Contains(loc, "done=reply") {
		t.Fatalf("B's dashboard after the reply: %s, want done=reply (sent)", loc)
	}
	if sent := b.wa.replies(); len(sent) != 0 {
		t.Errorf("B's WhatsApp, standing by, sent %+v", sent)
	}
	sent := a.wa.replies()
	if len(sent) != 1 || sent[0].Kind != bot.KindStaff || sent[0].Chat.ID != farmer || !strings.Contains(sent[0].Text, "Spray copper in the evening.") ||
		!strings.Contains(sent[0].Text, "Ann") {
		t.Fatalf("A sent %+v, want the signed staff reply", sent)
	}
	staffRecords := func() []store.Record {
		recs, err := b.st.RecentMessages(t.Context(), "whatsapp", farmer, 10)
		must(t, "read the conversation", err)
		var out []store.Record
		for _, r := range recs {
			if r.Kind == string(bot.KindStaff) {
				out = append(out, r)
			}
		}
		return out
	}
	if recs := staffRecords(); len(recs) != 1 || recs[0].Staff != "alice" || recs[0].Error != "" || recs[0].Direction != store.Outbound || recs[0].Text != sent[0].Text {
		t.Fatalf("logged staff replies %+v", recs)
	}

	// WhatsApp runs nowhere (B's standby stopped first, so that it does not take over).
	stopB()
	stopA()
	loc = agent.post(conv, conv+"/reply", url.Values{"text": {"Also remove the lower leaves."}})
	if !strings.Contains(loc, "done=queued") {
		t.Fatalf("B's dashboard with WhatsApp running nowhere: %s, want done=queued", loc)
	}
	page, _ := agent.get(strings.TrimPrefix(loc, b.review))
	if !strings.Contains(page, "the reply is queued and goes out when it is connected again") {
		t.Errorf("B's page after a queued reply does not say so")
	}
	const queuedMark = "Queued — goes out when WhatsApp is connected"
	if !strings.Contains(page, queuedMark) || !strings.Contains(page, "Also remove the lower leaves.") {
		t.Errorf("B's conversation page does not show the queued reply")
	}
	if n := len(staffRecords()); n != 1 {
		t.Fatalf("%d staff replies logged before the queued one went out, want 1", n)
	}
	// A runs WhatsApp again: the queued reply goes out at once, through A, and is logged.
	a.runWhatsApp(t)
	eventually(t, "the queued reply is sent by A", func() bool { return len(a.wa.replies()) == 2 })
	if r := a.wa.replies()[1]; r.Kind != bot.KindStaff || !strings.Contains(r.Text, "Also remove the lower leaves.") {
		t.Fatalf("A sent %+v", r)
	}
	eventually(t, "the queued reply is logged", func() bool { return len(staffRecords()) == 2 })
	if r := staffRecords()[1]; r.Error != "" || r.Staff != "alice" {
		t.Fatalf("logged %+v", r)
	}
	if page, _ := agent.get(conv); strings.Contains(page, queuedMark) || strings.Count(page, "Also remove the lower leaves.") != 1 {
		t.Errorf("B's conversation page after the queued reply went out still shows it queued, or not once")
	}
}

// TestStaffReplyOneProcessWhatsAppDown: on a bbolt file (one process, no other replica) with
// WhatsApp not running (not linked, or stopped for good), an agent's reply cannot go out: the
// dashboard says it was not delivered and the conversation logs it so, as before the outbox;
// nothing is queued that no process would ever send.
func TestStaffReplyOneProcessWhatsAppDown(t *testing.T) {
	db := filepath.Join(t.TempDir(), "cropshield.db")
	must(t, "staff add", staffCmd(t.Context(), []string{"add", "alice", "--role", "agent", "--db", db}, strings.NewReader(staffPassword+"\n"), io.Discard, io.Discard))
	r := startOutboxReplica(t, db)
	const farmer = "254712345678"
	_, err := r.st.AppendMessage(t.Context(), store.Record{Time: time.Now(), Platform: "whatsapp", ChatID: farmer,
		Direction: store.Inbound, SenderID: farmer, Text: "My maize has brown spots", Lang: "en"})
	must(t, "log the farmer's message", err)
	conv := "/conversations/" + base64.RawURLEncoding.EncodeToString([]byte("whatsapp\x00"+farmer))

	agent := loginStaff(t, r.review, "alice", staffPassword)
	loc := agent.post(conv, conv+"/reply", url.Values{"text": {"Spray copper in the evening."}})
	if !strings.Contains(loc, "done=not_sent") {
		t.Fatalf("the dashboard after a reply with WhatsApp down: %s, want done=not_sent", loc)
	}
	recs, err := r.st.RecentMessages(t.Context(), "whatsapp", farmer, 10)
	must(t, "read the conversation", err)
	if len(recs) != 2 || recs[1].Kind != string(bot.KindStaff) || recs[1].Error == "" || recs[1].Staff != "alice" {
		t.Fatalf("the conversation %+v, want the reply logged as not delivered", recs)
	}
	pending, err := r.st.PendingStaffReplies(t.Context(), "whatsapp")
	must(t, "read the outbox", err)
	if len(pending) != 0 {
		t.Fatalf("queued %+v on a store no other process can use", pending)
	}
}
