package webchat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cropshield/cropshield/adapters/webchat"
	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/store"
)

var _ bot.Adapter = (*webchat.Adapter)(nil)

const cookieName = "cropshield_chat"

// fakeHandler records every message it gets and answers through the Responder it was given: a
// "command" text reply to everything, then for a photo either a "diagnosis" reply carrying a
// small JPEG or, if the photo cannot be fetched, an "error" reply that says why.
type fakeHandler struct {
	jpeg []byte

	mu   sync.Mutex
	got  []handled
	errs []error // errors from out.Send
}

type handled struct {
	msg      bot.Message
	photo    []byte
	fetchErr error
}

func newFakeHandler(t *testing.T) *fakeHandler {
	return &fakeHandler{jpeg: smallJPEG(t)}
}

func (f *fakeHandler) Handle(ctx context.Context, m bot.Message, out bot.Responder) error {
	rec := handled{msg: m}
	switch {
	case m.Photo != nil && m.Photo.Fetch == nil:
		rec.fetchErr = errors.New("no photo to fetch") // over the limit: only its size came
	case m.Photo != nil:
		rec.photo, rec.fetchErr = m.Photo.Fetch(ctx)
	}
	f.mu.Lock()
	f.got = append(f.got, rec)
	f.mu.Unlock()

	replies := []bot.Reply{{Chat: m.Chat, ReplyTo: m.ID, Kind: bot.KindCommand, Text: "got: " + m.Text}}
	switch {
	case m.Photo == nil:
	case rec.fetchErr != nil:
		replies = append(replies, bot.Reply{Chat: m.Chat, ReplyTo: m.ID, Kind: bot.KindError,
			Text: fmt.Sprintf("photo of %d bytes is too large", m.Photo.Size)})
	default:
		replies = append(replies, bot.Reply{Chat: m.Chat, ReplyTo: m.ID, Kind: bot.KindDiagnosis,
			Text: "late blight", Image: f.jpeg})
	}
	for _, r := range replies {
		if err := out.Send(ctx, r); err != nil {
			f.mu.Lock()
			f.errs = append(f.errs, err)
			f.mu.Unlock()
			return err
		}
	}
	return nil
}

func (f *fakeHandler) handled() []handled {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]handled(nil), f.got...)
}

func (f *fakeHandler) last(t *testing.T) handled {
	t.Helper()
	got := f.handled()
	if len(got) == 0 {
		t.Fatal("handler got no message")
	}
	return got[len(got)-1]
}

func smallJPEG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := range 8 {
		img.Set(i, i, color.RGBA{R: 200, A: 255})
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// env is one adapter mounted on a 127.0.0.1 test server, with the intake on a real bbolt store.
type env struct {
	a   *webchat.Adapter
	srv *httptest.Server
	h   *fakeHandler
	st  *store.Store
	in  *bot.Intake
}

func newEnv(t *testing.T, opts webchat.Options) *env {
	t.Helper()
	a, err := webchat.New(slog.New(slog.DiscardHandler), opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	a.Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "cropshield.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{a: a, srv: srv, h: newFakeHandler(t), st: st}
	e.in = bot.NewIntake(bot.IntakeConfig{}, slog.New(slog.DiscardHandler), st, e.h)
	t.Cleanup(func() {
		if err := e.in.Stop(context.Background()); err != nil {
			t.Error(err)
		}
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

// run starts Run with the fake handler, waits until messages are accepted, and stops it (and
// checks that it returned nil) when the test ends.
func (e *env) run(t *testing.T) {
	t.Helper()
	cancel, done := e.start(t)
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v after cancel, want nil", err)
		}
	})
}

func (e *env) start(t *testing.T) (context.CancelFunc, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.a.Run(ctx, e.in) }()
	// A request that is not multipart gets 503 until Run has installed the handler and 400
	// after; it never reaches the handler. Messages are taken once the intake opened the
	// channel (what /healthz waits for).
	for {
		code := e.probe(t)
		if code != http.StatusServiceUnavailable {
			if code != http.StatusBadRequest {
				t.Fatalf("probe: status %d, want 400 once Run runs", code)
			}
			if e.in.Accepting(bot.WebChat) {
				return cancel, done
			}
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		default:
		}
		runtime.Gosched()
	}
}

// probe posts a body that is not multipart and returns the status.
func (e *env) probe(t *testing.T) int {
	t.Helper()
	resp, err := http.Post(e.srv.URL+"/api/send", "text/plain", strings.NewReader("hi"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// browser is an HTTP client with its own cookie jar, as one browser would be.
func (e *env) browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

// secret is the browser's chat cookie value.
func (e *env) secret(t *testing.T, c *http.Client) string {
	t.Helper()
	u, _ := url.Parse(e.srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == cookieName {
			return ck.Value
		}
	}
	t.Fatal("browser has no chat cookie")
	return ""
}

type upload struct {
	text      string
	photo     []byte
	photoName string // "" means "leaf.jpg"
	header    http.Header
	after     uint64
	clientID  string // the page's id of the message, "" for none
}

type entries struct {
	Entries []webchat.Entry `json:"entries"`
}

// sendReq builds a POST /api/send request with a multipart body.
func (e *env) sendReq(u upload) (*http.Request, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if u.clientID != "" {
		if err := mw.WriteField("client_id", u.clientID); err != nil {
			return nil, err
		}
	}
	if u.text != "" {
		if err := mw.WriteField("text", u.text); err != nil {
			return nil, err
		}
	}
	if u.photo != nil {
		name := u.photoName
		if name == "" {
			name = "leaf.jpg"
		}
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="photo"; filename=%q`, name))
		h.Set("Content-Type", "image/jpeg")
		pw, err := mw.CreatePart(h)
		if err != nil {
			return nil, err
		}
		if _, err := pw.Write(u.photo); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/api/send?after=%d", e.srv.URL, u.after), &body)
	if err != nil {
		return nil, err
	}
	for k, v := range u.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return req, nil
}

// trySend posts u and returns the status and, on 200, the entries. Safe in goroutines.
func (e *env) trySend(c *http.Client, u upload) (int, []webchat.Entry, error) {
	req, err := e.sendReq(u)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil, nil
	}
	var out entries
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, out.Entries, nil
}

// send posts u and requires 200.
func (e *env) send(t *testing.T, c *http.Client, u upload) []webchat.Entry {
	t.Helper()
	code, got, err := e.trySend(c, u)
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK {
		t.Fatalf("POST /api/send: status %d, want 200", code)
	}
	return got
}

func (e *env) tryMessages(c *http.Client, after uint64) ([]webchat.Entry, error) {
	resp, err := c.Get(fmt.Sprintf("%s/api/messages?after=%d", e.srv.URL, after))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/messages: status %d", resp.StatusCode)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		return nil, fmt.Errorf("GET /api/messages: Cache-Control %q, want no-store", cc)
	}
	var out entries
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	return out.Entries, nil
}

func (e *env) messages(t *testing.T, c *http.Client, after uint64) []webchat.Entry {
	t.Helper()
	got, err := e.tryMessages(c, after)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// get fetches path with c (nil: no cookies) and returns the status and body.
func (e *env) get(t *testing.T, c *http.Client, path string) (*http.Response, []byte) {
	t.Helper()
	if c == nil {
		c = &http.Client{}
	}
	resp, err := c.Get(e.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// summary renders entries as "from/kind/text" lines for readable comparisons.
func summary(es []webchat.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.From + "/" + e.Kind + "/" + e.Text
	}
	return out
}

func seqs(es []webchat.Entry) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// steppingClock returns a concurrency-safe clock that moves one second per call, so that
// "least recently active" never depends on the real clock's resolution.
func steppingClock() func() time.Time {
	var n atomic.Int64
	base := time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)
	return func() time.Time { return base.Add(time.Duration(n.Add(1)) * time.Second) }
}

func TestPlatform(t *testing.T) {
	a, err := webchat.New(slog.New(slog.DiscardHandler), webchat.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Platform(); got != bot.WebChat {
		t.Errorf("Platform() = %q, want %q", got, bot.WebChat)
	}
}

func TestSendAcceptedOnlyWhileRunning(t *testing.T) {
	e := newEnv(t, webchat.Options{})
	b := e.browser(t)

	code, _, err := e.trySend(b, upload{text: "/start"})
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusServiceUnavailable {
		t.Fatalf("before Run: status %d, want 503", code)
	}

	cancel, done := e.start(t)
	if got := e.send(t, b, upload{text: "/start"}); len(got) == 0 {
		t.Error("while Run runs: no entries in the response")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v after cancel, want nil", err)
	}

	code, _, err = e.trySend(b, upload{text: "/help"})
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusServiceUnavailable {
		t.Fatalf("after Run stopped: status %d, want 503", code)
	}
	if n := len(e.h.handled()); n != 1 {
		t.Errorf("handler got %d messages, want 1 (only the one sent while Run ran)", n)
	}
}

func TestPageAndAssets(t *testing.T) {
	e := newEnv(t, webchat.Options{})
	b := e.browser(t)

	resp, page := e.get(t, b, "/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("GET /: Content-Type %q, want text/html", ct)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("GET /: Content-Security-Policy %q, want default-src 'self'", csp)
	}
	for _, ref := range []string{`src="/static/app.js"`, `href="/static/style.css"`, "max 20 MB"} {
		if !bytes.Contains(page, []byte(ref)) {
			t.Errorf("page does not contain %s", ref)
		}
	}

	for _, path := range []string{"/", "/static/app.js", "/static/style.css"} {
		resp, body := e.get(t, b, path)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d", path, resp.StatusCode)
			continue
		}
		if len(body) == 0 {
			t.Errorf("GET %s: empty body", path)
		}
		lower := strings.ToLower(string(body))
		for _, origin := range []string{"http://", "https://", `"//`, `'//`, "url(//"} {
			if strings.Contains(lower, origin) {
				t.Errorf("GET %s references an external origin (%s)", path, origin)
			}
		}
	}
}

func TestPageSetsChatCookie(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("secure=%v", secure), func(t *testing.T) {
			e := newEnv(t, webchat.Options{SecureCookie: secure})
			resp, _ := e.get(t, nil, "/")
			var ck *http.Cookie
			for _, c := range resp.Cookies() {
				if c.Name == cookieName {
					ck = c
				}
			}
			if ck == nil {
				t.Fatalf("GET / set no %s cookie", cookieName)
			}
			if !ck.HttpOnly {
				t.Error("chat cookie is not HttpOnly")
			}
			if ck.SameSite != http.SameSiteStrictMode && ck.SameSite != http.SameSiteLaxMode {
				t.Errorf("chat cookie SameSite = %v, want Strict or Lax", ck.SameSite)
			}
			if ck.Secure != secure {
				t.Errorf("chat cookie Secure = %v, want %v", ck.Secure, secure)
			}
			if ck.Path != "/" {
				t.Errorf("chat cookie Path = %q, want /", ck.Path)
			}
			if len(ck.Value) < 32 {
				t.Errorf("chat cookie value %q is too short to be a secret", ck.Value)
			}

			// A browser that already has the cookie keeps it.
			b := e.browser(t)
			e.get(t, b, "/")
			first := e.secret(t, b)
			resp, _ = e.get(t, b, "/")
			for _, c := range resp.Cookies() {
				if c.Name == cookieName {
					t.Errorf("GET / with a chat cookie set a new one")
				}
			}
			if got := e.secret(t, b); got != first {
				t.Errorf("chat cookie changed from %q to %q", first, got)
			}
		})
	}
}

func TestSendPhotoAndText(t *testing.T) {
	e := newEnv(t, webchat.Options{})
	e.run(t)
	b := e.browser(t)
	photo := smallJPEG(t)

	got := e.send(t, b, upload{
		text:   "  what is this?  ",
		photo:  photo,
		header: http.Header{"Accept-Language": {"sw-KE,sw;q=0.9,en;q=0.5"}},
	})

	h := e.h.last(t)
	m := h.msg
	secret := e.secret(t, b)
	if m.Chat.Platform != bot.WebChat {
		t.Errorf("Chat.Platform = %q, want %q", m.Chat.Platform, bot.WebChat)
	}
	if m.Chat.Kind != bot.Private {
		t.Errorf("Chat.Kind = %q, want %q", m.Chat.Kind, bot.Private)
	}
	if m.Chat.ID == "" || strings.Contains(m.Chat.ID, secret) {
		t.Errorf("Chat.ID = %q: want a non-empty id that does not contain the cookie %q", m.Chat.ID, secret)
	}
	if strings.Contains(m.Sender.ID, secret) {
		t.Errorf("Sender.ID = %q contains the cookie", m.Sender.ID)
	}
	if m.ID == "" {
		t.Error("message has no ID")
	}
	if m.Text != "what is this?" {
		t.Errorf("Text = %q, want %q", m.Text, "what is this?")
	}
	if m.Sender.LangHint != "sw-KE,sw;q=0.9,en;q=0.5" {
		t.Errorf("Sender.LangHint = %q, want the Accept-Language header", m.Sender.LangHint)
	}
	if m.Photo == nil {
		t.Fatal("message has no Photo")
	}
	if m.Photo.Size != int64(len(photo)) {
		t.Errorf("Photo.Size = %d, want %d", m.Photo.Size, len(photo))
	}
	if m.Photo.MIME != "image/jpeg" {
		t.Errorf("Photo.MIME = %q, want image/jpeg", m.Photo.MIME)
	}
	if h.fetchErr != nil {
		t.Fatalf("Photo.Fetch: %v", h.fetchErr)
	}
	if !bytes.Equal(h.photo, photo) {
		t.Errorf("Photo.Fetch returned %d bytes that differ from the %d uploaded", len(h.photo), len(photo))
	}

	want := []string{"you/photo/what is this?", "bot/command/got: what is this?", "bot/diagnosis/late blight"}
	if !equal(summary(got), want) {
		t.Fatalf("response entries = %q, want %q", summary(got), want)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Errorf("entries out of order: seqs %v", seqs(got))
		}
	}
	for _, en := range got[:2] {
		if en.ImageURL != "" {
			t.Errorf("entry %d (%s) has image_url %q, want none", en.Seq, en.Kind, en.ImageURL)
		}
	}
	imageURL := got[2].ImageURL
	if !strings.HasPrefix(imageURL, "/") {
		t.Fatalf("image reply image_url = %q, want a same-origin path", imageURL)
	}

	// The same chat id again for the same browser.
	e.send(t, b, upload{text: "/help"})
	if id := e.h.last(t).msg.Chat.ID; id != m.Chat.ID {
		t.Errorf("second message from the same browser: chat id %q, want %q", id, m.Chat.ID)
	}

	// The overlay is served to this browser only.
	other := e.browser(t)
	e.get(t, other, "/")
	forged := e.browser(t)
	u, _ := url.Parse(e.srv.URL)
	forged.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: "not-a-hex-secret", Path: "/"}})
	for _, tc := range []struct {
		name   string
		client *http.Client
		path   string
		status int
	}{
		{"same browser", b, imageURL, http.StatusOK},
		{"another browser", other, imageURL, http.StatusNotFound},
		{"no cookie", nil, imageURL, http.StatusNotFound},
		{"malformed cookie", forged, imageURL, http.StatusNotFound},
		{"same browser, unknown image", b, "/api/image/999", http.StatusNotFound},
		{"same browser, not a number", b, "/api/image/x", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.get(t, tc.client, tc.path)
			if resp.StatusCode != tc.status {
				t.Fatalf("GET %s: status %d, want %d", tc.path, resp.StatusCode, tc.status)
			}
			if tc.status != http.StatusOK {
				if bytes.Equal(body, e.h.jpeg) {
					t.Error("the image leaked in a non-200 response")
				}
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "image/jpeg" {
				t.Errorf("Content-Type %q, want image/jpeg", ct)
			}
			if !bytes.Equal(body, e.h.jpeg) {
				t.Errorf("image body (%d bytes) differs from the reply's JPEG (%d bytes)", len(body), len(e.h.jpeg))
			}
		})
	}
}

func TestSendKinds(t *testing.T) {
	e := newEnv(t, webchat.Options{})
	e.run(t)
	photo := smallJPEG(t)
	for _, tc := range []struct {
		name      string
		up        upload
		wantPhoto bool
		want      []string
	}{
		{"text only", upload{text: "/help"}, false,
			[]string{"you/text//help", "bot/command/got: /help"}},
		{"photo only", upload{photo: photo}, true,
			[]string{"you/photo/", "bot/command/got: ", "bot/diagnosis/late blight"}},
		{"no Accept-Language", upload{text: "hi"}, false,
			[]string{"you/text/hi", "bot/command/got: hi"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.send(t, e.browser(t), tc.up)
			if !equal(summary(got), tc.want) {
				t.Errorf("entries = %q, want %q", summary(got), tc.want)
			}
			m := e.h.last(t).msg
			if (m.Photo != nil) != tc.wantPhoto {
				t.Errorf("message has photo = %v, want %v", m.Photo != nil, tc.wantPhoto)
			}
			if m.Sender.LangHint != "" {
				t.Errorf("Sender.LangHint = %q without Accept-Language, want empty", m.Sender.LangHint)
			}
		})
	}
}

func TestTwoBrowsersAreSeparate(t *testing.T) {
	e := newEnv(t, webchat.Options{})
	e.run(t)
	alice, bob := e.browser(t), e.browser(t)

	e.send(t, alice, upload{text: "alice one"})
	aliceID := e.h.last(t).msg.Chat.ID
	e.send(t, bob, upload{text: "bob one"})
	bobID := e.h.last(t).msg.Chat.ID
	e.send(t, alice, upload{text: "alice two"})

	if aliceID == bobID {
		t.Fatalf("two browsers share chat id %q", aliceID)
	}
	if e.secret(t, alice) == e.secret(t, bob) {
		t.Fatal("two browsers got the same cookie")
	}
	for _, tc := range []struct {
		name   string
		client *http.Client
		want   []string
	}{
		{"alice", alice, []string{"you/text/alice one", "bot/command/got: alice one",
			"you/text/alice two", "bot/command/got: alice two"}},
		{"bob", bob, []string{"you/text/bob one", "bot/command/got: bob one"}},
		{"new browser", e.browser(t), []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.messages(t, tc.client, 0)
			if !equal(summary(got), tc.want) {
				t.Errorf("GET /api/messages = %q, want %q", summary(got), tc.want)
			}
		})
	}
}

func TestStaffSendArrivesLater(t *testing.T) {
	e := newEnv(t, webchat.Options{})
	e.run(t)
	b := e.browser(t)
	first := e.send(t, b, upload{text: "is this blight?"})
	chat := e.h.last(t).msg.Chat
	after := first[len(first)-1].Seq

	img := smallJPEG(t)
	if err := e.a.Send(context.Background(), bot.Reply{Chat: chat, Kind: bot.KindStaff, Text: "Yes, remove the leaf."}); err != nil {
		t.Fatal(err)
	}
	if err := e.a.Send(context.Background(), bot.Reply{Chat: chat, Kind: bot.KindStaff, Text: "See here.", Image: img}); err != nil {
		t.Fatal(err)
	}

	got := e.messages(t, b, after)
	want := []string{"bot/staff/Yes, remove the leaf.", "bot/staff/See here."}
	if !equal(summary(got), want) {
		t.Fatalf("GET /api/messages?after=%d = %q, want %q", after, summary(got), want)
	}
	if got[0].Seq <= after || got[1].Seq <= got[0].Seq {
		t.Errorf("seqs %v after %d: want increasing and newer", seqs(got), after)
	}
	if all := e.messages(t, b, 0); len(all) != len(first)+2 {
		t.Errorf("GET /api/messages?after=0: %d entries, want %d", len(all), len(first)+2)
	}
	if got := e.messages(t, b, got[1].Seq); len(got) != 0 {
		t.Errorf("GET /api/messages after the last seq: %q, want none", summary(got))
	}
	resp, body := e.get(t, b, got[1].ImageURL)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, img) {
		t.Errorf("GET %s: status %d, %d bytes; want 200 and the staff image", got[1].ImageURL, resp.StatusCode, len(body))
	}

	// POST /api/send?after=N answers with the entries after N only.
	sent := e.send(t, b, upload{text: "thanks", after: got[1].Seq})
	if want := []string{"you/text/thanks", "bot/command/got: thanks"}; !equal(summary(sent), want) {
		t.Errorf("POST /api/send?after=%d = %q, want %q", got[1].Seq, summary(sent), want)
	}
}

func TestSendErrors(t *testing.T) {
	a, err := webchat.New(slog.New(slog.DiscardHandler), webchat.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		r    bot.Reply
	}{
		{"other platform", context.Background(), bot.Reply{Chat: bot.ChatRef{Platform: bot.Telegram, ID: "1"}, Text: "x"}},
		{"no platform", context.Background(), bot.Reply{Chat: bot.ChatRef{ID: "1"}, Text: "x"}},
		{"cancelled context", cancelled, bot.Reply{Chat: bot.ChatRef{Platform: bot.WebChat, ID: "1"}, Text: "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := a.Send(tc.ctx, tc.r); err == nil {
				t.Error("Send succeeded, want an error")
			}
		})
	}
	if err := a.Send(cancelled, bot.Reply{Chat: bot.ChatRef{Platform: bot.WebChat, ID: "1"}}); !errors.Is(err, context.Canceled) {
		t.Errorf("Send with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestPhotoOverLimit(t *testing.T) {
	const limit = 1 << 10
	e := newEnv(t, webchat.Options{MaxPhotoBytes: limit})
	e.run(t)
	b := e.browser(t)
	big := bytes.Repeat([]byte{0xAB}, 5<<10)

	got := e.send(t, b, upload{photo: big})

	h := e.h.last(t)
	if h.msg.Photo == nil {
		t.Fatal("handler got no Photo for an oversized upload")
	}
	if h.msg.Photo.Size != int64(len(big)) {
		t.Errorf("Photo.Size = %d, want the real size %d", h.msg.Photo.Size, len(big))
	}
	if h.fetchErr == nil {
		t.Errorf("Photo.Fetch returned %d bytes and no error, want an error", len(h.photo))
	}
	want := []string{"you/photo/", "bot/command/got: ", fmt.Sprintf("bot/error/photo of %d bytes is too large", len(big))}
	if !equal(summary(got), want) {
		t.Errorf("entries = %q, want %q", summary(got), want)
	}

	// A photo exactly at the limit is passed on whole.
	exact := bytes.Repeat([]byte{0xCD}, limit)
	e.send(t, b, upload{photo: exact})
	h = e.h.last(t)
	if h.fetchErr != nil || !bytes.Equal(h.photo, exact) || h.msg.Photo.Size != limit {
		t.Errorf("photo at the limit: Size %d, Fetch %d bytes, err %v; want %d bytes, no error",
			h.msg.Photo.Size, len(h.photo), h.fetchErr, limit)
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, webchat.Options{})
	e.run(t)
	b := e.browser(t)

	raw := func(contentType, body string) func() (*http.Request, error) {
		return func() (*http.Request, error) {
			req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/api/send", strings.NewReader(body))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", contentType)
			return req, nil
		}
	}
	multi := func(u upload) func() (*http.Request, error) {
		return func() (*http.Request, error) { return e.sendReq(u) }
	}
	emptyName := func() (*http.Request, error) {
		// A "photo" part with no file name (the browser sends one when no file is chosen).
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		pw, err := mw.CreateFormField("photo")
		if err != nil {
			return nil, err
		}
		if _, err := pw.Write([]byte("data")); err != nil {
			return nil, err
		}
		if err := mw.Close(); err != nil {
			return nil, err
		}
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/api/send", &body)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", mw.FormDataContentType())
		return req, nil
	}

	for _, tc := range []struct {
		name string
		req  func() (*http.Request, error)
	}{
		{"urlencoded form", raw("application/x-www-form-urlencoded", "text=hello")},
		{"json", raw("application/json", `{"text":"hello"}`)},
		{"no content type", raw("", "hello")},
		{"multipart without boundary", raw("multipart/form-data", "hello")},
		{"truncated multipart", raw("multipart/form-data; boundary=xyz", "--xyz\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nhel")},
		{"empty multipart", multi(upload{})},
		{"only spaces", multi(upload{text: " \t\n "})},
		{"photo field without a file", emptyName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := tc.req()
			if err != nil {
				t.Fatal(err)
			}
			resp, err := b.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", resp.StatusCode)
			}
		})
	}
	if n := len(e.h.handled()); n != 0 {
		t.Errorf("handler got %d messages from bad requests, want 0", n)
	}
	if got := e.messages(t, b, 0); len(got) != 0 {
		t.Errorf("bad requests left entries in the chat: %q", summary(got))
	}
}

func TestOutboxKeepsLastEntries(t *testing.T) {
	e := newEnv(t, webchat.Options{MaxEntries: 3})
	e.run(t)
	b := e.browser(t)

	first := e.send(t, b, upload{photo: smallJPEG(t)}) // 3 entries; the last has an image
	img := first[len(first)-1].ImageURL
	if resp, _ := e.get(t, b, img); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200 while its entry is kept", img, resp.StatusCode)
	}
	e.send(t, b, upload{text: "two"}) // 2 more: the image entry is still one of the last 3
	if resp, _ := e.get(t, b, img); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200 while its entry is kept", img, resp.StatusCode)
	}
	last := e.send(t, b, upload{text: "three"}) // 2 more: the image entry is dropped

	want := []string{"bot/command/got: two", "you/text/three", "bot/command/got: three"}
	got := e.messages(t, b, 0)
	if !equal(summary(got), want) {
		t.Errorf("GET /api/messages = %q, want only the last 3 %q", summary(got), want)
	}
	if !equal(summary(last), want) {
		t.Errorf("POST /api/send response = %q, want %q", summary(last), want)
	}
	if n := len(got); n > 0 && got[n-1].Seq != 7 {
		t.Errorf("last seq = %d, want 7 (seqs keep counting after drops)", got[n-1].Seq)
	}
	if resp, _ := e.get(t, b, img); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET %s of a dropped entry: status %d, want 404", img, resp.StatusCode)
	}
}

func TestOutboxEvictsLeastRecentlyActiveChat(t *testing.T) {
	e := newEnv(t, webchat.Options{MaxChats: 2, Now: steppingClock()})
	e.run(t)
	a, b, c := e.browser(t), e.browser(t), e.browser(t)

	aEntries := e.send(t, a, upload{photo: smallJPEG(t)})
	aImg := aEntries[len(aEntries)-1].ImageURL
	bEntries := e.send(t, b, upload{photo: smallJPEG(t)})
	bImg := bEntries[len(bEntries)-1].ImageURL
	e.send(t, a, upload{text: "a again"}) // a is now more recently active than b
	e.send(t, c, upload{text: "c"})       // a third chat: b goes

	for _, tc := range []struct {
		name    string
		client  *http.Client
		entries int
		img     string
		imgCode int
	}{
		{"a kept", a, 5, aImg, http.StatusOK},
		{"b evicted", b, 0, bImg, http.StatusNotFound},
		{"c kept", c, 2, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := e.messages(t, tc.client, 0); len(got) != tc.entries {
				t.Errorf("GET /api/messages: %d entries %q, want %d", len(got), summary(got), tc.entries)
			}
			if tc.img == "" {
				return
			}
			if resp, _ := e.get(t, tc.client, tc.img); resp.StatusCode != tc.imgCode {
				t.Errorf("GET %s: status %d, want %d", tc.img, resp.StatusCode, tc.imgCode)
			}
		})
	}
}

func TestConcurrentBrowsers(t *testing.T) {
	const browsers, perBrowser, parallel = 6, 4, 2
	e := newEnv(t, webchat.Options{})
	e.run(t)
	photo := smallJPEG(t)

	clients := make([]*http.Client, browsers)
	for i := range clients {
		clients[i] = e.browser(t)
		e.get(t, clients[i], "/") // the cookie first, so parallel requests share one chat
	}

	var wg sync.WaitGroup
	for i, c := range clients {
		for p := range parallel {
			wg.Go(func() {
				for n := range perBrowser {
					u := upload{text: fmt.Sprintf("b%d p%d n%d", i, p, n)}
					if n%2 == 1 {
						u.photo = photo
					}
					code, got, err := e.trySend(c, u)
					if err != nil || code != http.StatusOK {
						t.Errorf("browser %d: status %d, err %v", i, code, err)
						return
					}
					for _, en := range got {
						if en.From == "you" && !strings.HasPrefix(en.Text, fmt.Sprintf("b%d ", i)) {
							t.Errorf("browser %d saw another browser's entry %q", i, en.Text)
						}
					}
				}
			})
		}
		wg.Go(func() {
			for range perBrowser {
				if _, err := e.tryMessages(c, 0); err != nil {
					t.Errorf("browser %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for n := range perBrowser {
			r := bot.Reply{Chat: bot.ChatRef{Platform: bot.WebChat, ID: "staff-only", Kind: bot.Private},
				Kind: bot.KindStaff, Text: fmt.Sprint(n), Image: photo}
			if err := e.a.Send(context.Background(), r); err != nil {
				t.Errorf("staff Send: %v", err)
				return
			}
		}
	})
	wg.Wait()

	if n := len(e.h.handled()); n != browsers*parallel*perBrowser {
		t.Errorf("handler got %d messages, want %d", n, browsers*parallel*perBrowser)
	}
	ids := map[string]int{}
	for _, h := range e.h.handled() {
		ids[h.msg.Chat.ID]++
	}
	if len(ids) != browsers {
		t.Errorf("messages came from %d chat ids, want %d", len(ids), browsers)
	}
	for i, c := range clients {
		got := e.messages(t, c, 0)
		// Each text message gets one reply, each photo message two.
		want := parallel * perBrowser * 5 / 2
		if len(got) != want {
			t.Errorf("browser %d: %d entries, want %d", i, len(got), want)
		}
		for j := 1; j < len(got); j++ {
			if got[j].Seq <= got[j-1].Seq {
				t.Errorf("browser %d: seqs not increasing: %v", i, seqs(got))
				break
			}
		}
	}
}

// TestNoTurnAfterDrain: at shutdown the intake is stopped (its drain) while the web chat's Run
// still runs; a message posted after that must not start a turn (it once went straight to the
// handler after the handler's Wait had returned): it gets 503 with the "busy, try again" text
// and the handler never sees it.
func TestNoTurnAfterDrain(t *testing.T) {
	e := newEnv(t, webchat.Options{})
	e.run(t)
	b := e.browser(t)
	if got := e.send(t, b, upload{text: "/start"}); len(got) == 0 {
		t.Fatal("no entries before the shutdown")
	}
	if err := e.in.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	req, err := e.sendReq(upload{text: "/help"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "busy") {
		t.Errorf("after the drain: status %d %q, want 503 saying the bot is busy", resp.StatusCode, body)
	}
	if n := len(e.h.handled()); n != 1 {
		t.Errorf("handler got %d messages, want 1: none after the drain", n)
	}
}

// TestClientIDNamesTheMessage: the page's client_id is the message's id, so a POST sent again
// after a failed request is the same message (answered once by the handler's turn log); an id
// that is not one (too short, too long, odd characters) is ignored and the server names it.
func TestClientIDNamesTheMessage(t *testing.T) {
	e := newEnv(t, webchat.Options{})
	e.run(t)
	c := e.browser(t)
	for _, tc := range []struct {
		name, clientID, wantID string
	}{
		{"uuid", "0f8c2d1e-5b7a-4c3e-9d21-6a4b8e0f1c2d", "c-0f8c2d1e-5b7a-4c3e-9d21-6a4b8e0f1c2d"},
		{"sent again", "0f8c2d1e-5b7a-4c3e-9d21-6a4b8e0f1c2d", "c-0f8c2d1e-5b7a-4c3e-9d21-6a4b8e0f1c2d"},
		{"hex", "a1b2c3d4e5f60718", "c-a1b2c3d4e5f60718"},
		{"too short", "abc", ""},
		{"too long", strings.Repeat("a", 65), ""},
		{"odd characters", "abc/def?ghi=jkl", ""},
		{"none", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.send(t, c, upload{text: "hello " + tc.name, clientID: tc.clientID})
			got := e.h.last(t).msg.ID
			if tc.wantID != "" && got != tc.wantID {
				t.Errorf("message id %q, want %q", got, tc.wantID)
			}
			if tc.wantID == "" && (strings.HasPrefix(got, "c-") || got == "") {
				t.Errorf("message id %q, want one the server made", got)
			}
		})
	}
}

// TestMessageSentAgainIsShownOnce: the page sends a message again with the same client_id when
// its request failed (the server may have got it): the chat shows the user's line once.
func TestMessageSentAgainIsShownOnce(t *testing.T) {
	e := newEnv(t, webchat.Options{})
	e.run(t)
	c := e.browser(t)
	u := upload{text: "hello again", clientID: "0f8c2d1e-5b7a-4c3e-9d21-6a4b8e0f1c2d"}
	e.send(t, c, u)
	e.send(t, c, u)
	e.send(t, c, upload{text: "hello again", clientID: "a1b2c3d4e5f60718"}) // another message, same words
	var mine int
	for _, en := range e.messages(t, c, 0) {
		if en.From == "you" && en.Text == "hello again" {
			mine++
		}
	}
	if mine != 2 {
		t.Errorf("the user's lines %d, want 2: one per message however often it was sent", mine)
	}
}
