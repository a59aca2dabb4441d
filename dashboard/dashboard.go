// Package dashboard is CropShield's review dashboard: a web application, served by the same
// process as the bot (bbolt allows one process per file), where support staff read what farmers
// sent and what the bot answered, confirm or correct diagnoses, answer farmers through the
// channel they wrote on, mark conversations resolved, see statistics and export data.
//
// Every page, image and export needs a staff session (Login); only the login page, the
// stylesheet and the first admin's setup page (guarded by its one-time token) do not. Sessions are random tokens kept in an HttpOnly, SameSite=Strict cookie
// (Secure behind TLS) and stored only as hashes, with an idle and an absolute expiry. Every form
// carries a per-session CSRF token checked on every POST, on top of the standard library's
// cross-origin protection. Failed logins are rate limited per client address and per account.
// Viewers read; agents also act (corrections, replies, resolving, exports); admins also add,
// disable and reset staff accounts and clear the analysis cache, each with an audit entry
// (staff.go, cache.go). While no admin exists, serve prints a one-time setup link (SetupToken).
//
// Pages are html/template files and one stylesheet embedded in the binary and parsed at start-up;
// charts are server-rendered SVG. No JavaScript, no external CDN.
package dashboard

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
)

//go:embed templates/*.html assets/*
var files embed.FS

// Options configure the dashboard; zero fields take the defaults in parentheses.
type Options struct {
	Store Store
	// Responders send staff replies, by platform: the adapters.
	Responders map[bot.Platform]bot.Responder
	Locales    *locales.Bundle
	// Classes are the model's class ids, offered when correcting a diagnosis.
	Classes      []string
	ModelVersion string
	// BehindTLSProxy: the dashboard is served over HTTPS by a reverse proxy. Cookies are then
	// Secure (they are too on a request that came over TLS) and the client address for rate
	// limiting is the last X-Forwarded-For entry, the one the proxy added.
	BehindTLSProxy bool
	// SessionIdle and SessionMax end a session after that long unused, or that long after login
	// (30 min, 12 h).
	SessionIdle, SessionMax time.Duration
	// LoginFailures failed logins within LoginWindow, per client address and per account, block
	// further attempts (429) until the window has passed (5, 15 min).
	LoginFailures int
	LoginWindow   time.Duration
	// PageSize is the number of conversations per list page (50).
	PageSize int
	// BcryptCost is the cost of the dummy hash compared for unknown accounts so that they take
	// as long as known ones; match the accounts' cost (DefaultBcryptCost).
	BcryptCost int
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Roles of staff accounts.
const (
	RoleViewer = "viewer" // reads conversations, photos and statistics
	RoleAgent  = "agent"  // also corrects diagnoses, replies, resolves and exports
	RoleAdmin  = "admin"  // also adds, disables and resets staff accounts and clears the cache
)

// roleRank orders the roles: each may do what the ones below it may.
func roleRank(role string) access {
	switch role {
	case RoleViewer:
		return viewer
	case RoleAgent:
		return agent
	case RoleAdmin:
		return admin
	}
	return public
}

// access is what a route requires.
type access int

const (
	public access = iota // no session: the login page and the stylesheet only
	viewer
	agent
	admin
)

// route is one entry of the router: every route the dashboard serves is in Server.routes, so a
// test can walk them all.
type route struct {
	pattern string // net/http pattern: "GET /conversations/{id}"
	access  access
	handle  func(w http.ResponseWriter, r *http.Request, s *session)
}

// Server is the dashboard. It is safe for concurrent use and has no goroutines of its own.
type Server struct {
	opts    Options
	log     *slog.Logger
	st      Store
	pages   map[string]*template.Template
	routes  []route
	limiter *limiter
	handler http.Handler

	// dummyHash is compared for unknown accounts, made on first use (bcrypt is slow on purpose).
	dummyOnce sync.Once
	dummyHash []byte

	setup setupLink // the one-time link that makes the first admin (staff.go)
}

// New parses the templates and builds the routes.
func New(log *slog.Logger, opts Options) (*Server, error) {
	if opts.Store == nil || opts.Locales == nil {
		return nil, errors.New("dashboard: Options.Store and Options.Locales are required")
	}
	if opts.SessionIdle <= 0 {
		opts.SessionIdle = 30 * time.Minute
	}
	if opts.SessionMax <= 0 {
		opts.SessionMax = 12 * time.Hour
	}
	if opts.LoginFailures <= 0 {
		opts.LoginFailures = 5
	}
	if opts.LoginWindow <= 0 {
		opts.LoginWindow = 15 * time.Minute
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 50
	}
	if opts.BcryptCost == 0 {
		opts.BcryptCost = DefaultBcryptCost
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.BcryptCost < bcrypt.MinCost || opts.BcryptCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("dashboard: bcrypt cost %d out of range", opts.BcryptCost)
	}
	s := &Server{opts: opts, log: log, st: opts.Store,
		limiter: newLimiter(opts.LoginFailures, opts.LoginWindow, opts.Now)}
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	s.routes = s.routeTable()
	mux := http.NewServeMux()
	for _, rt := range s.routes {
		mux.Handle(rt.pattern, s.guard(rt))
	}
	s.handler = http.NewCrossOriginProtection().Handler(mux)
	return s, nil
}

// dummy returns the hash compared when the account does not exist.
func (s *Server) dummy() []byte {
	s.dummyOnce.Do(func() {
		h, err := bcrypt.GenerateFromPassword([]byte("no such account: compare something anyway"), s.opts.BcryptCost)
		if err != nil { // only for a cost out of range, checked in New
			panic(err)
		}
		s.dummyHash = h
	})
	return s.dummyHash
}

// Handler serves the dashboard.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routeTable() []route {
	return []route{
		{"GET /login", public, s.loginPage},
		{"POST /login", public, s.login},
		{"GET /static/style.css", public, s.stylesheet},
		{"GET /favicon.ico", public, s.favicon},
		{"POST /logout", viewer, s.logout},
		{"GET /{$}", viewer, func(w http.ResponseWriter, r *http.Request, _ *session) {
			http.Redirect(w, r, "/conversations", http.StatusSeeOther)
		}},
		{"GET /conversations", viewer, s.conversations},
		{"GET /conversations/{id}", viewer, s.thread},
		{"POST /conversations/{id}/reply", agent, s.reply},
		{"POST /conversations/{id}/resolve", agent, s.resolve},
		{"POST /conversations/{id}/forget", agent, s.forget},
		{"GET /photos/{hash}", viewer, s.photoPage},
		{"GET /photos/{hash}/image", viewer, s.photoImage},
		{"GET /photos/{hash}/overlay", viewer, s.overlayImage},
		{"POST /photos/{hash}/correction", agent, s.correct},
		{"GET /stats", viewer, s.stats},
		{"POST /cache/clear", admin, s.clearCache},
		{"GET /staff", admin, s.staffPage},
		{"POST /staff", admin, s.addStaff},
		{"POST /staff/{name}/disable", admin, s.disableStaff},
		{"POST /staff/{name}/password", admin, s.resetStaff},
		{"GET /setup", public, s.setupPage},
		{"POST /setup", public, s.setupAdmin},
		{"GET /export", viewer, s.exportPage},
		{"GET /export/dataset.zip", agent, s.exportDataset},
		{"GET /export/conversations.csv", agent, s.exportConversations},
		{"GET /export/messages.csv", agent, s.exportMessages},
	}
}

// guard applies a route's access rule: security headers always; then a session (else a
// redirect to the login page, or 401 for other methods), the CSRF token on POST (else 403) and
// the role (else 403).
func (s *Server) guard(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		if rt.access == public {
			rt.handle(w, r, nil)
			return
		}
		sess := s.authenticate(w, r)
		if sess == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "log in first", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if !sess.checkCSRF(r.PostFormValue(csrfField)) {
				s.log.Warn("dashboard: form without a valid CSRF token", "staff", sess.name, "path", r.URL.Path)
				http.Error(w, "invalid or missing form token: reload the page and try again", http.StatusForbidden)
				return
			}
		}
		if roleRank(sess.role) < rt.access {
			http.Error(w, "this needs an "+map[access]string{agent: "agent", admin: "admin"}[rt.access]+" account", http.StatusForbidden)
			return
		}
		rt.handle(w, r, sess)
	})
}

// maxFormBytes bounds a form post (a staff reply is at most a few KB).
const maxFormBytes = 64 << 10

func (s *Server) stylesheet(w http.ResponseWriter, r *http.Request, _ *session) {
	css, err := fs.ReadFile(files, "assets/style.css")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(css)
}

// view is what every page template gets.
type view struct {
	Title   string
	Nav     string // the active menu entry
	Session *session
	CSRF    string
	Flash   string
	Error   string
	Page    any
}

func (s *Server) parseTemplates() error {
	funcs := template.FuncMap{
		"disease": s.diseaseName,
		"pct":     s.percent,
		"share":   share100,
		"when": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"convID": conversationID,
		"short": func(h string) string {
			if len(h) > 12 {
				return h[:12]
			}
			return h
		},
		"f1":         func(v float64) string { return fmt.Sprintf("%.1f", v) },
		"title":      title,
		"langName":   s.languageName,
		"actionText": s.actionText,
		"cropName":   s.cropName,
	}
	entries, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return fmt.Errorf("dashboard: templates: %w", err)
	}
	s.pages = map[string]*template.Template{}
	for _, name := range entries {
		base := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if base == "layout" || base == "parts" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/parts.html", name)
		if err != nil {
			return fmt.Errorf("dashboard: parse %s: %w", name, err)
		}
		s.pages[base] = t
	}
	return nil
}

// render writes a page with status code; it renders into a buffer first so that a template
// error never sends half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, page string, v view) {
	t, ok := s.pages[page]
	if !ok {
		s.fail(w, r, fmt.Errorf("no template %q", page))
		return
	}
	if v.Session != nil {
		v.CSRF = v.Session.csrf
	}
	if v.Flash == "" {
		v.Flash = flash(r.URL.Query().Get("done"))
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = buf.WriteTo(w)
}

// flash is the confirmation shown after an action (?done=key): fixed texts, never the query.
func flash(key string) string {
	switch key {
	case "reply":
		return "Reply sent."
	case "corrected":
		return "Diagnosis corrected."
	case "confirmed":
		return "Diagnosis confirmed."
	case "resolved":
		return "Conversation marked resolved."
	case "reopened":
		return "Conversation reopened."
	case "forgotten":
		return "The farmer's messages, photos, diagnoses and settings were deleted."
	case "forget_unconfirmed":
		return "Nothing was deleted: tick the box to confirm that the farmer asked for it."
	case "staff_added":
		return "Account added."
	case "staff_disabled":
		return "Account disabled: its sessions ended."
	case "staff_enabled":
		return "Account enabled."
	case "staff_password":
		return "Password changed: the account's sessions ended."
	case "cache_cleared":
		return "Cache cleared: photos sent again are analysed again."
	case "first_admin":
		return "Admin account created: log in with it."
	case "not_sent":
		return "The reply could not be delivered; it is logged as not delivered."
	case "queued": // bot.ErrReplyQueued: only WhatsApp is a bot.RemoteSender
		return "WhatsApp is not connected right now: the reply is queued and goes out when it is connected again (until then it shows in the conversation, marked queued)."
	case "no_channel":
		return "This conversation's channel is not running, so the reply was not sent."
	}
	return ""
}

// fail logs an internal error and answers 500 without details.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	s.log.Error("dashboard request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// diseaseName is "Tomato: Late blight" for a class id, or the id if it has no English texts.
func (s *Server) diseaseName(class string) string {
	if class == "" {
		return ""
	}
	d, err := s.opts.Locales.Disease(locales.Default, class)
	if err != nil {
		return class
	}
	return d.Crop + ": " + d.Name
}

// cropName is a crop id's English name ("Corn (maize)"); "any" is a cleared choice.
func (s *Server) cropName(crop string) string {
	if crop == locales.AnyCrop {
		return "any (guessed from each photo)"
	}
	return s.opts.Locales.CropName(locales.Default, crop)
}

// percent writes a model's probability as the chat does (locales.Bundle.Percent): "<1%" and
// ">99%" at the ends, never "0%" or "100%" for a guess.
func (s *Server) percent(p float64) string { return s.opts.Locales.Percent(locales.Default, p) }

// share100 writes a share of a count (statistics): exactly "0%" and "100%" when it is, else
// whole percents with "<1%" and ">99%" at the ends, so that a few cases among many never read
// as none or all.
func share100(v float64) string {
	switch {
	case v <= 0:
		return "0%"
	case v >= 1:
		return "100%"
	case v < 0.01:
		return "<1%"
	case v > 0.99:
		return ">99%"
	}
	return fmt.Sprintf("%.0f%%", math.Round(v*100))
}

// languageName is a language code's English name.
func (s *Server) languageName(code string) string {
	for _, l := range s.opts.Locales.Languages() {
		if l.Code == code {
			return cmp.Or(l.EnglishName, l.Name, code)
		}
	}
	return cmp.Or(code, "—")
}

// actionText describes a staff action in the thread.
func (s *Server) actionText(a *store.StaffAction) string {
	photo := a.PhotoHash
	if len(photo) > 12 {
		photo = photo[:12]
	}
	switch a.Action {
	case store.ActionConfirm:
		return "Confirmed the diagnosis of photo " + photo + ": " + s.diseaseName(a.Class)
	case store.ActionCorrect:
		return "Corrected the diagnosis of photo " + photo + " to " + s.diseaseName(a.Class)
	case store.ActionResolve:
		return "Marked the conversation resolved"
	case store.ActionReopen:
		return "Reopened the conversation"
	}
	return a.Action
}

func (s *Server) platforms() []string {
	ps := []string{string(bot.Telegram), string(bot.WhatsApp), string(bot.WebChat)}
	for p := range s.opts.Responders {
		if !slices.Contains(ps, string(p)) {
			ps = append(ps, string(p))
		}
	}
	return ps
}
