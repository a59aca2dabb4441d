package dashboard

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
)

// clock is a test clock that moves only when told to.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// responder is a fake adapter that keeps the staff replies it was asked to send.
type responder struct {
	mu      sync.Mutex
	replies []bot.Reply
}

func (r *responder) Send(_ context.Context, rep bot.Reply) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replies = append(r.replies, rep)
	return nil
}

func (r *responder) sent() []bot.Reply {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bot.Reply(nil), r.replies...)
}

const (
	agentPass  = "correct horse battery"
	viewerPass = "viewer password 1"
)

type env struct {
	t      testing.TB
	st     *store.Store
	srv    *Server
	clock  *clock
	out    *responder
	web    *httptest.Server
	hash   string // the seeded photo
	photo  []byte
	convID string
	class  string // the seeded photo's top-1
}

func newEnv(t testing.TB, mod func(*Options)) *env {
	t.Helper()
	st, err := store.Open(context.Background(), t.TempDir()+"/cropshield.db", store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	loc, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, clock: &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}, out: &responder{}}
	opts := Options{Store: st, Locales: loc, Classes: loc.Classes(), ModelVersion: "v1", BcryptCost: bcrypt.MinCost,
		Responders: map[bot.Platform]bot.Responder{bot.WebChat: e.out}, Now: e.clock.now}
	if mod != nil {
		mod(&opts)
	}
	e.srv, err = New(slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []struct{ name, role, pass string }{{"alice", RoleAgent, agentPass}, {"victor", RoleViewer, viewerPass}} {
		acct, err := NewAccount(a.name, a.role, a.pass, bcrypt.MinCost, e.clock.now())
		if err != nil {
			t.Fatal(err)
		}
		if err := st.AddStaff(context.Background(), acct); err != nil {
			t.Fatal(err)
		}
	}
	e.seed()
	e.web = httptest.NewServer(e.srv.Handler())
	t.Cleanup(e.web.Close)
	return e
}

// seed records a farmer's photo and the bot's answer the way the handler does.
func (e *env) seed() {
	ctx := context.Background()
	t := e.t
	e.photo = []byte("\xff\xd8\xff\xe0 fake jpeg of a leaf")
	sum := sha256.Sum256(e.photo)
	e.hash = hex.EncodeToString(sum[:])
	e.class = "tomato__late_blight"
	now := e.clock.now()
	chat := store.Chat{Platform: "webchat", ID: "web-1", Kind: "private"}
	if _, err := e.st.TouchChat(ctx, chat, now); err != nil {
		t.Fatal(err)
	}
	in := store.Record{Time: now, Platform: "webchat", ChatID: "web-1", Direction: store.Inbound, SenderID: "web-1",
		SenderName: "Amina", MessageID: "m1", Text: "my tomato is sick", Lang: "en"}
	turn, _, err := e.st.BeginTurn(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	in.Seq = turn.Seq
	a := store.Analysis{PhotoHash: e.hash, ModelVersion: "v1", Overlay: []byte("\xff\xd8 overlay"), CreatedAt: now,
		Top: []store.Candidate{{Class: e.class, Prob: 0.41}, {Class: "tomato__early_blight", Prob: 0.3}, {Class: "tomato__leaf_mold", Prob: 0.1}}}
	if err := e.st.PutAnalysis(ctx, a, e.photo, "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	in.PhotoHash = e.hash
	if err := e.st.UpdateMessage(ctx, in); err != nil {
		t.Fatal(err)
	}
	out := store.Record{Time: now.Add(time.Second), Platform: "webchat", ChatID: "web-1", Direction: store.Outbound,
		Text: "I am not sure about this photo.", PhotoHash: e.hash, Kind: "unsure", Lang: "en"}
	if err := e.st.ReplySent(ctx, "m1", 0, out, false); err != nil {
		t.Fatal(err)
	}
	e.convID = conversationID("webchat", "web-1")
}

// client is a browser without JavaScript: cookies, no automatic redirects.
func (e *env) client() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfRegexp = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// page GETs a path and returns the status, the body and the page's CSRF token if any.
func (e *env) page(c *http.Client, path string) (int, string, string) {
	e.t.Helper()
	resp, err := c.Get(e.web.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	token := ""
	if m := csrfRegexp.FindSubmatch(b); m != nil {
		token = string(m[1])
	}
	return resp.StatusCode, string(b), token
}

func (e *env) post(c *http.Client, path string, form url.Values) *http.Response {
	e.t.Helper()
	resp, err := c.PostForm(e.web.URL+path, form)
	if err != nil {
		e.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// login logs c in and returns the session's CSRF token.
func (e *env) login(c *http.Client, name, pass string) string {
	e.t.Helper()
	_, _, token := e.page(c, "/login")
	resp := e.post(c, "/login", url.Values{"csrf": {token}, "name": {name}, "password": {pass}})
	if resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("login %s: %s", name, resp.Status)
	}
	code, _, token := e.page(c, "/conversations")
	if code != http.StatusOK || token == "" {
		e.t.Fatalf("after login: %d, token %q", code, token)
	}
	return token
}

// path fills a route pattern's wildcards with real values.
func (e *env) path(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	path = strings.NewReplacer("{$}", "", "{id}", e.convID, "{hash}", e.hash).Replace(path)
	return method, path
}

// TestEveryRouteNeedsASession walks the router's own table: every route but the login page and
// the stylesheet answers a request without a session (or with a forged one) with a redirect to
// the login page or 401, and never with the data.
func TestEveryRouteNeedsASession(t *testing.T) {
	e := newEnv(t, nil)
	publicRoutes := map[string]bool{"GET /login": true, "POST /login": true, "GET /static/style.css": true, "GET /favicon.ico": true,
		"GET /setup": true, "POST /setup": true} // the setup link's own one-time token guards these
	forged := &http.Cookie{Name: sessionCookie, Value: strings.Repeat("A", 43)}
	for _, rt := range e.srv.routes {
		t.Run(rt.pattern, func(t *testing.T) {
			if rt.access == public {
				if !publicRoutes[rt.pattern] {
					t.Fatalf("route %s is public: only %v may be", rt.pattern, publicRoutes)
				}
				return
			}
			method, path := e.path(rt.pattern)
			for _, cookie := range []*http.Cookie{nil, forged} {
				req, err := http.NewRequest(method, e.web.URL+path, strings.NewReader("csrf=x&text=hi&class="+e.class))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if cookie != nil {
					req.AddCookie(cookie)
				}
				resp, err := e.client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(resp.Header.Get("Location"), "/login?next="):
				case resp.StatusCode == http.StatusUnauthorized:
				default:
					t.Errorf("%s %s (cookie %v): %s, want a redirect to /login or 401", method, path, cookie != nil, resp.Status)
				}
				if bytes.Contains(body, e.photo) || bytes.Contains(body, []byte("Amina")) {
					t.Errorf("%s %s leaked data without a session", method, path)
				}
			}
		})
	}
	// Nothing happened.
	if _, err := e.st.GetCorrection(t.Context(), e.hash); err == nil {
		t.Error("a correction was stored without a session")
	}
	if len(e.out.sent()) != 0 {
		t.Error("a reply was sent without a session")
	}
}

// TestFormsNeedCSRFToken: every POST route, the login form too, refuses a form without its
// token, or with another session's token, with 403 and does nothing.
func TestFormsNeedCSRFToken(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	token := e.login(c, "alice", agentPass)
	other := e.login(e.client(), "alice", agentPass)
	if other == token {
		t.Fatal("two sessions share a CSRF token")
	}
	for _, rt := range e.srv.routes {
		method, path := e.path(rt.pattern)
		if method != http.MethodPost {
			continue
		}
		for name, tok := range map[string]string{"no token": "", "another session's token": other, "garbage": "x"} {
			t.Run(rt.pattern+"/"+name, func(t *testing.T) {
				form := url.Values{"name": {"alice"}, "password": {agentPass}, "text": {"hello"}, "class": {e.class}, "resolved": {"1"}, "confirm": {"yes"}}
				if tok != "" {
					form.Set("csrf", tok)
				}
				if resp := e.post(c, path, form); resp.StatusCode != http.StatusForbidden {
					t.Errorf("%s without a valid token: %s, want 403", rt.pattern, resp.Status)
				}
			})
		}
	}
	if _, err := e.st.GetCorrection(t.Context(), e.hash); err == nil {
		t.Error("a correction was stored without a token")
	}
	if len(e.out.sent()) != 0 {
		t.Error("a reply was sent without a token")
	}
	if sum, _ := e.st.GetSummary(t.Context(), "webchat", "web-1"); sum.Resolved {
		t.Error("resolved without a token")
	}
	if sum, _ := e.st.GetSummary(t.Context(), "webchat", "web-1"); !sum.Forgotten.IsZero() {
		t.Error("forgotten without a token")
	}
	// The session still works (logout without a token did not log out).
	if code, _, _ := e.page(c, "/conversations"); code != http.StatusOK {
		t.Errorf("session after the refused logout: %d", code)
	}
}

// TestLoginRateLimit: ten wrong passwords in a row get 429 from the sixth, per client address
// and per account; even the right password waits until the window has passed.
func TestLoginRateLimit(t *testing.T) {
	tests := []struct {
		name    string
		account func(i int) string
		addr    func(i int) string
	}{
		{"one account from one address", func(int) string { return "alice" }, func(int) string { return "192.0.2.1:1000" }},
		{"one account from many addresses", func(int) string { return "alice" }, func(i int) string { return fmt.Sprintf("192.0.2.%d:1000", i+1) }},
		{"many accounts from one address", func(i int) string { return fmt.Sprintf("guess%d", i) }, func(int) string { return "192.0.2.1:1000" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			h := e.srv.Handler()
			secret := newToken()
			attempt := func(i int, name, pass string) int {
				form := url.Values{"csrf": {derive(secret, "login")}, "name": {name}, "password": {pass}}
				req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.AddCookie(&http.Cookie{Name: loginCookie, Value: secret})
				req.RemoteAddr = tt.addr(i)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				return w.Code
			}
			for i := range 10 {
				want := http.StatusUnauthorized
				if i >= 5 {
					want = http.StatusTooManyRequests
				}
				if got := attempt(i, tt.account(i), "wrong password!"); got != want {
					t.Errorf("attempt %d: %d, want %d", i+1, got, want)
				}
			}
			blockedAddr := tt.addr(9)
			if tt.account(0) == "alice" {
				if got := attempt(9, "alice", agentPass); got != http.StatusTooManyRequests {
					t.Errorf("right password while blocked: %d, want 429", got)
				}
			} else if got := attemptFrom(e, secret, blockedAddr, "alice", agentPass); got != http.StatusTooManyRequests {
				t.Errorf("right password from the blocked address: %d, want 429", got)
			}
			e.clock.advance(15 * time.Minute)
			if got := attemptFrom(e, secret, blockedAddr, "alice", agentPass); got != http.StatusSeeOther {
				t.Errorf("right password after the window: %d, want 303", got)
			}
		})
	}
}

func attemptFrom(e *env, secret, addr, name, pass string) int {
	form := url.Values{"csrf": {derive(secret, "login")}, "name": {name}, "password": {pass}}
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: loginCookie, Value: secret})
	req.RemoteAddr = addr
	w := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(w, req)
	return w.Code
}

// TestPhotoURLsNeedASession: a photo's and an overlay's URL give nothing without a session (nor
// after logout), and the image with one.
func TestPhotoURLsNeedASession(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{"/photos/" + e.hash + "/image", "/photos/" + e.hash + "/overlay"} {
		anon := e.client()
		code, body, _ := e.page(anon, path)
		if code != http.StatusSeeOther || strings.Contains(body, "jpeg") {
			t.Errorf("%s without a session: %d %q", path, code, body)
		}
		c := e.client()
		token := e.login(c, "victor", viewerPass)
		resp, err := c.Get(e.web.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		img, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/jpeg" || !bytes.HasPrefix(img, []byte("\xff\xd8")) {
			t.Errorf("%s with a session: %s %s", path, resp.Status, resp.Header.Get("Content-Type"))
		}
		if resp := e.post(c, "/logout", url.Values{"csrf": {token}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout: %s", resp.Status)
		}
		if code, _, _ := e.page(c, path); code != http.StatusSeeOther {
			t.Errorf("%s after logout: %d", path, code)
		}
	}
}

// TestSessionExpiry: a session ends after 30 idle minutes, and after 12 hours however busy.
func TestSessionExpiry(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	e.login(c, "alice", agentPass)
	e.clock.advance(29 * time.Minute)
	if code, _, _ := e.page(c, "/conversations"); code != http.StatusOK {
		t.Fatalf("after 29 idle minutes: %d", code)
	}
	e.clock.advance(31 * time.Minute)
	if code, _, _ := e.page(c, "/conversations"); code != http.StatusSeeOther {
		t.Fatalf("after 31 idle minutes: %d, want a redirect", code)
	}
	e.login(c, "alice", agentPass)
	for range 12 * 3 {
		e.clock.advance(20 * time.Minute)
		if code, _, _ := e.page(c, "/stats"); code != http.StatusOK {
			t.Fatalf("busy session ended early: %d", code)
		}
	}
	e.clock.advance(time.Minute)
	if code, _, _ := e.page(c, "/stats"); code != http.StatusSeeOther {
		t.Fatalf("after 12 h: %d, want a redirect", code)
	}
	// A removed account's session ends too.
	e.login(c, "alice", agentPass)
	if err := e.st.RemoveStaff(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := e.page(c, "/stats"); code != http.StatusSeeOther {
		t.Fatalf("after the account was removed: %d", code)
	}
}

func TestCookieAttributes(t *testing.T) {
	for _, proxy := range []bool{false, true} {
		t.Run(fmt.Sprintf("behind TLS proxy %v", proxy), func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.BehindTLSProxy = proxy })
			h := e.srv.Handler()
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/login", nil))
			pre := w.Result().Cookies()
			if len(pre) != 1 {
				t.Fatalf("login page cookies %v", pre)
			}
			form := url.Values{"csrf": {derive(pre[0].Value, "login")}, "name": {"alice"}, "password": {agentPass}}
			req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(pre[0])
			w = httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusSeeOther {
				t.Fatalf("login: %d", w.Code)
			}
			var sess *http.Cookie
			for _, c := range w.Result().Cookies() {
				if strings.HasSuffix(c.Name, sessionCookie) {
					sess = c
				}
			}
			wantName := sessionCookie
			if proxy {
				wantName = "__Host-" + sessionCookie
			}
			if sess == nil || sess.Name != wantName || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Secure != proxy || sess.Path != "/" {
				t.Fatalf("session cookie %+v", sess)
			}
			// The store has only the token's hash.
			if _, err := e.st.GetStaffSession(t.Context(), sess.Value); err == nil {
				t.Error("the session token is stored in clear")
			}
			if _, err := e.st.GetStaffSession(t.Context(), hashToken(sess.Value)); err != nil {
				t.Errorf("session by hash: %v", err)
			}
		})
	}
}

func TestViewerCannotAct(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	token := e.login(c, "victor", viewerPass)
	for _, path := range []string{"/conversations/" + e.convID + "/reply", "/conversations/" + e.convID + "/resolve", "/photos/" + e.hash + "/correction"} {
		if resp := e.post(c, path, url.Values{"csrf": {token}, "text": {"hi"}, "class": {e.class}, "resolved": {"1"}}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("viewer POST %s: %s, want 403", path, resp.Status)
		}
	}
	for _, path := range []string{"/export/dataset.zip", "/export/messages.csv"} {
		if code, _, _ := e.page(c, path); code != http.StatusForbidden {
			t.Errorf("viewer GET %s: %d, want 403", path, code)
		}
	}
	if _, body, _ := e.page(c, "/conversations/"+e.convID); strings.Contains(body, `id="reply-text"`) {
		t.Error("a viewer sees the reply form")
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                                   "/conversations",
		"/stats?days=7":                      "/stats?days=7",
		"//evil.example/":                    "/conversations",
		"https://evil.example/":              "/conversations",
		"/\\evil.example":                    "/conversations",
		"/login?next=/x":                     "/conversations",
		"/conversations/abc?c=1#x":           "/conversations/abc?c=1#x",
		"javascript:alert(1)":                "/conversations",
		"/%2F%2Fevil.example/x":              "/%2F%2Fevil.example/x",
		"/ok\r\nSet-Cookie: x=1":             "/conversations",
		"/photos/" + strings.Repeat("a", 64): "/photos/" + strings.Repeat("a", 64),
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewAccount(t *testing.T) {
	tests := []struct {
		name, role, pass string
		err              error
	}{
		{"Alice ", RoleAgent, "long enough password", nil},
		{"bob@coop", RoleViewer, "0123456789", nil},
		{"", RoleAgent, "long enough password", ErrBadName},
		{"al ice", RoleAgent, "long enough password", ErrBadName},
		{"alice", "root", "long enough password", ErrBadRole},
		{"ada", RoleAdmin, "long enough password", nil},
		{"alice", RoleAgent, "short", ErrWeakPassword},
		{"alice", RoleAgent, strings.Repeat("x", 73), ErrWeakPassword},
	}
	for _, tt := range tests {
		a, err := NewAccount(tt.name, tt.role, tt.pass, bcrypt.MinCost, time.Now())
		if err != tt.err {
			t.Errorf("NewAccount(%q, %q): %v, want %v", tt.name, tt.role, err, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		if a.Name != NormalizeName(tt.name) || bytes.Contains(a.PasswordHash, []byte(tt.pass)) ||
			bcrypt.CompareHashAndPassword(a.PasswordHash, []byte(tt.pass)) != nil {
			t.Errorf("account %+v", a)
		}
	}
}
