package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/cropshield/cropshield/store"
)

// DefaultBcryptCost is the bcrypt cost of new passwords.
const DefaultBcryptCost = 12

// MinPasswordLen and maxPasswordBytes bound passwords (bcrypt reads at most 72 bytes).
const (
	MinPasswordLen   = 10
	maxPasswordBytes = 72
)

// Errors of account creation.
var (
	ErrBadName      = errors.New("dashboard: a staff name is 1-64 characters: lowercase letters, digits and . _ @ -, starting with a letter or digit")
	ErrBadRole      = errors.New("dashboard: the role is viewer, agent or admin")
	ErrWeakPassword = fmt.Errorf("dashboard: a password has %d to %d bytes", MinPasswordLen, maxPasswordBytes)
)

var nameRegexp = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{0,63}$`)

// NormalizeName is how staff names are compared: trimmed and lowercase.
func NormalizeName(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// NewAccount checks a new account's name, role and password and hashes the password with bcrypt
// at cost (0: DefaultBcryptCost). The password itself is not kept.
func NewAccount(name, role, password string, cost int, now time.Time) (store.StaffAccount, error) {
	name = NormalizeName(name)
	if !nameRegexp.MatchString(name) {
		return store.StaffAccount{}, ErrBadName
	}
	if roleRank(role) == public {
		return store.StaffAccount{}, ErrBadRole
	}
	if err := CheckPassword(password); err != nil {
		return store.StaffAccount{}, err
	}
	if cost == 0 {
		cost = DefaultBcryptCost
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return store.StaffAccount{}, fmt.Errorf("dashboard: hash password: %w", err)
	}
	return store.StaffAccount{Name: name, Role: role, PasswordHash: hash, Created: now}, nil
}

// CheckPassword returns ErrWeakPassword for a password too short or too long (for bcrypt).
func CheckPassword(password string) error {
	if utf8.RuneCountInString(password) < MinPasswordLen || len(password) > maxPasswordBytes {
		return ErrWeakPassword
	}
	return nil
}

// session is a logged-in staff member, for one request. The raw token is not kept: only its
// hash (the store's key) and the CSRF token derived from it.
type session struct {
	idHash string
	name   string
	role   string
	csrf   string
}

// Name, Role and Agent are for templates.
func (s *session) Name() string { return s.name }
func (s *session) Role() string { return s.role }
func (s *session) Agent() bool  { return roleRank(s.role) >= agent }
func (s *session) Admin() bool  { return s.role == RoleAdmin }

const csrfField = "csrf"

func (s *session) checkCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.csrf)) == 1
}

// derive is HMAC-SHA256(secret, purpose), base64url: CSRF tokens tied to a secret the browser
// holds in an HttpOnly cookie, that reveal nothing about it.
func derive(secret, purpose string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(purpose))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// hashToken is how a session token is stored.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte("cropshield-staff-session:" + token))
	return hex.EncodeToString(sum[:])
}

func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// secure reports whether cookies must be Secure: behind the TLS proxy, or over TLS.
func (s *Server) secure(r *http.Request) bool { return s.opts.BehindTLSProxy || r.TLS != nil }

// cookieName uses the __Host- prefix on Secure cookies: the browser then refuses them from
// anything but this host over HTTPS, with Path=/ and no Domain.
func (s *Server) cookieName(r *http.Request, base string) string {
	if s.secure(r) {
		return "__Host-" + base
	}
	return base
}

const (
	sessionCookie = "cropshield_staff"
	loginCookie   = "cropshield_login" // pre-session secret for the login form's CSRF token
)

func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, base, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(r, base), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteStrictMode})
}

func cookieToken(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil || len(c.Value) != 43 {
		return ""
	}
	if _, err := base64.RawURLEncoding.DecodeString(c.Value); err != nil {
		return ""
	}
	return c.Value
}

// authenticate returns the request's live session, or nil. An expired session is deleted and its
// cookie cleared.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) *session {
	token := cookieToken(r, s.cookieName(r, sessionCookie))
	if token == "" {
		return nil
	}
	ctx := r.Context()
	idHash := hashToken(token)
	ss, err := s.st.GetStaffSession(ctx, idHash)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Error("dashboard: read session", "err", err)
		}
		return nil
	}
	now := s.opts.Now()
	if s.expired(ss, now) {
		if err := s.st.DeleteStaffSession(ctx, idHash); err != nil {
			s.log.Warn("dashboard: delete expired session", "err", err)
		}
		s.setCookie(w, r, sessionCookie, "", -1)
		return nil
	}
	acct, err := s.st.GetStaff(ctx, ss.Name)
	if err != nil || acct.Disabled { // the account was removed or disabled
		return nil
	}
	if now.Sub(ss.Seen) > time.Minute {
		if err := s.st.TouchStaffSession(ctx, idHash, now); err != nil {
			s.log.Warn("dashboard: touch session", "err", err)
		}
	}
	return &session{idHash: idHash, name: acct.Name, role: acct.Role, csrf: derive(token, "csrf")}
}

func (s *Server) expired(ss store.StaffSession, now time.Time) bool {
	return now.Sub(ss.Seen) > s.opts.SessionIdle || now.Sub(ss.Created) > s.opts.SessionMax
}

type loginView struct {
	Name string
	Next string
}

// loginToken returns the login form's CSRF token, setting the pre-session cookie if needed.
func (s *Server) loginToken(w http.ResponseWriter, r *http.Request) string {
	secret := cookieToken(r, s.cookieName(r, loginCookie))
	if secret == "" {
		secret = newToken()
		s.setCookie(w, r, loginCookie, secret, 3600)
	}
	return derive(secret, "login")
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request, _ *session) {
	if sess := s.authenticate(w, r); sess != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	s.showLogin(w, r, http.StatusOK, "", loginView{Next: safeNext(r.URL.Query().Get("next"))})
}

func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, code int, msg string, lv loginView) {
	s.render(w, r, code, "login", view{Title: "Log in", CSRF: s.loginToken(w, r), Error: msg, Page: lv})
}

// login checks the form token, the rate limits, then the password.
func (s *Server) login(w http.ResponseWriter, r *http.Request, _ *session) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	secret := cookieToken(r, s.cookieName(r, loginCookie))
	if secret == "" || subtle.ConstantTimeCompare([]byte(r.PostFormValue(csrfField)), []byte(derive(secret, "login"))) != 1 {
		http.Error(w, "invalid or missing form token: reload the login page and try again", http.StatusForbidden)
		return
	}
	name := NormalizeName(r.PostFormValue("name"))
	password := r.PostFormValue("password")
	lv := loginView{Name: name, Next: safeNext(r.PostFormValue("next"))}
	ip := s.clientIP(r)
	keys := []string{"ip " + ip, "account " + name}
	if wait, blocked := s.limiter.blocked(keys...); blocked {
		s.log.Warn("dashboard: login rate limited", "ip", ip)
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		s.showLogin(w, r, http.StatusTooManyRequests, fmt.Sprintf("Too many failed logins. Try again in %d minutes.", int(wait.Minutes())+1), lv)
		return
	}
	acct, err := s.st.GetStaff(r.Context(), name)
	hash := acct.PasswordHash
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrInvalid) {
			s.fail(w, r, err)
			return
		}
		hash = s.dummy() // as slow as a real account: no way to tell names that exist
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || err != nil {
		s.limiter.fail(keys...)
		if err == nil {
			s.log.Warn("dashboard: login failed: wrong password", "staff", name, "ip", ip)
		} else {
			// Not the typed name: people type their password in the name field.
			s.log.Warn("dashboard: login failed: no such account", "ip", ip)
		}
		s.showLogin(w, r, http.StatusUnauthorized, "Wrong name or password.", lv)
		return
	}
	s.limiter.reset(keys[1])
	if acct.Disabled {
		s.log.Warn("dashboard: login refused: account disabled", "staff", name, "ip", ip)
		s.showLogin(w, r, http.StatusForbidden, "This account is disabled: ask an admin.", lv)
		return
	}
	token := newToken()
	now := s.opts.Now()
	if err := s.st.PutStaffSession(r.Context(), store.StaffSession{IDHash: hashToken(token), Name: acct.Name, Created: now, Seen: now}); err != nil {
		s.fail(w, r, err)
		return
	}
	if n, err := s.st.DeleteStaffSessionsWhere(r.Context(), func(ss store.StaffSession) bool { return s.expired(ss, now) }); err != nil {
		s.log.Warn("dashboard: delete expired sessions", "err", err)
	} else if n > 0 {
		s.log.Debug("dashboard: expired sessions deleted", "n", n)
	}
	s.setCookie(w, r, sessionCookie, token, int(s.opts.SessionMax.Seconds()))
	s.setCookie(w, r, loginCookie, "", -1)
	s.log.Info("dashboard: staff logged in", "staff", acct.Name, "role", acct.Role, "ip", ip)
	http.Redirect(w, r, lv.Next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, sess *session) {
	if err := s.st.DeleteStaffSession(context.WithoutCancel(r.Context()), sess.idHash); err != nil {
		s.fail(w, r, err)
		return
	}
	s.setCookie(w, r, sessionCookie, "", -1)
	s.log.Info("dashboard: staff logged out", "staff", sess.name)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a post-login redirect on this site: a path, never "//host" or a URL.
func safeNext(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/conversations"
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" || strings.HasPrefix(u.Path, "/login") {
		return "/conversations"
	}
	return next
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// clientIP is the peer address, or behind the proxy the address the proxy appended last to
// X-Forwarded-For (earlier entries come from the client and can be forged).
func (s *Server) clientIP(r *http.Request) string {
	if s.opts.BehindTLSProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			parts := strings.Split(xff[len(xff)-1], ",")
			if ip := net.ParseIP(strings.TrimSpace(parts[len(parts)-1])); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
