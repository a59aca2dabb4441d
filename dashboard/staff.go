package dashboard

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/cropshield/cropshield/store"
)

// StaffAdmin is what the staff administration needs from the store; *store.Store implements it.
type StaffAdmin interface {
	ListStaff(ctx context.Context) ([]store.StaffAccount, error)
	HasStaffRole(ctx context.Context, role string) (bool, error)
	AddStaffBy(ctx context.Context, a store.StaffAccount, by string) error
	AddFirstAdmin(ctx context.Context, a store.StaffAccount, adminRole string) error
	SetStaffDisabled(ctx context.Context, name string, disabled bool, by string, at time.Time) error
	SetStaffPassword(ctx context.Context, name string, hash []byte, by string, at time.Time) error
	LogStaffAudit(ctx context.Context, a store.StaffAudit) error
	StaffAuditLog(ctx context.Context, limit int) ([]store.StaffAudit, error)
}

// SetupLinkTTL is how long serve's one-time setup link stays valid.
const SetupLinkTTL = time.Hour

// setupLink is the pending one-time token that makes the first admin. Only its hash is kept,
// in memory: a restart makes a new one, nothing of it is stored.
type setupLink struct {
	mu      sync.Mutex
	hash    [sha256.Size]byte
	expires time.Time // zero: none pending
}

// SetupToken returns a new one-time token for the first admin's setup link (/setup?token=…),
// valid for SetupLinkTTL and for one use, or "" when an enabled admin account exists. The
// token is returned once for the operator's console and kept only as a hash: the caller must
// not log it. A new call replaces an earlier token.
func (s *Server) SetupToken(ctx context.Context) (string, error) {
	has, err := s.st.HasStaffRole(ctx, RoleAdmin)
	if err != nil || has {
		return "", err
	}
	token := newToken()
	s.setup.mu.Lock()
	defer s.setup.mu.Unlock()
	s.setup.hash, s.setup.expires = sha256.Sum256([]byte(token)), s.opts.Now().Add(SetupLinkTTL)
	return token, nil
}

// setupValid reports whether token is the pending setup token and has not expired.
func (s *Server) setupValid(token string) bool {
	h := sha256.Sum256([]byte(token))
	s.setup.mu.Lock()
	defer s.setup.mu.Unlock()
	return token != "" && !s.setup.expires.IsZero() && s.opts.Now().Before(s.setup.expires) &&
		subtle.ConstantTimeCompare(h[:], s.setup.hash[:]) == 1
}

// useSetup consumes the pending token if it is token (single use); false if it was not valid.
func (s *Server) useSetup(token string) bool {
	if !s.setupValid(token) {
		return false
	}
	s.setup.mu.Lock()
	defer s.setup.mu.Unlock()
	if s.setup.expires.IsZero() { // used meanwhile
		return false
	}
	s.setup.expires = time.Time{}
	return true
}

type setupView struct {
	Token string
	Name  string
}

// setupPage is the first admin's form, reached by the link serve prints. The token stays out of
// every log (only the path is ever logged) and the page sends no Referer.
func (s *Server) setupPage(w http.ResponseWriter, r *http.Request, _ *session) {
	w.Header().Set("Referrer-Policy", "no-referrer")
	token := r.URL.Query().Get("token")
	if !s.setupValid(token) {
		s.render(w, r, http.StatusNotFound, "setup", view{Title: "Set up", Error: "This setup link is not valid: it was used, it expired (after an hour), or it was replaced when serve restarted. Restart serve for a new link while there is no admin, or add one with 'cropshield staff add NAME --role admin' with serve stopped."})
		return
	}
	s.render(w, r, http.StatusOK, "setup", view{Title: "Set up", CSRF: s.loginToken(w, r), Page: setupView{Token: token}})
}

// setupAdmin makes the first admin account with the pending setup token, once.
func (s *Server) setupAdmin(w http.ResponseWriter, r *http.Request, _ *session) {
	w.Header().Set("Referrer-Policy", "no-referrer")
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	secret := cookieToken(r, s.cookieName(r, loginCookie))
	if secret == "" || subtle.ConstantTimeCompare([]byte(r.PostFormValue(csrfField)), []byte(derive(secret, "login"))) != 1 {
		http.Error(w, "invalid or missing form token: open the setup link again", http.StatusForbidden)
		return
	}
	token := r.PostFormValue("token")
	sv := setupView{Token: token, Name: NormalizeName(r.PostFormValue("name"))}
	again := func(msg string) {
		s.render(w, r, http.StatusBadRequest, "setup", view{Title: "Set up", CSRF: s.loginToken(w, r), Error: msg, Page: sv})
	}
	if !s.setupValid(token) {
		s.log.Warn("dashboard: setup form with an invalid or expired token", "ip", s.clientIP(r))
		s.render(w, r, http.StatusNotFound, "setup", view{Title: "Set up", Error: "This setup link is not valid any more."})
		return
	}
	password := r.PostFormValue("password")
	if password != r.PostFormValue("password2") {
		again("The two passwords differ.")
		return
	}
	acct, err := NewAccount(sv.Name, RoleAdmin, password, s.opts.BcryptCost, s.opts.Now())
	if err != nil {
		again(accountError(err))
		return
	}
	if !s.useSetup(token) {
		s.render(w, r, http.StatusNotFound, "setup", view{Title: "Set up", Error: "This setup link is not valid any more."})
		return
	}
	if err := s.st.AddFirstAdmin(r.Context(), acct, RoleAdmin); err != nil {
		if errors.Is(err, store.ErrExists) {
			s.render(w, r, http.StatusConflict, "setup", view{Title: "Set up", Error: "An admin account exists already: log in with it."})
			return
		}
		s.fail(w, r, err)
		return
	}
	s.log.Info("dashboard: first admin account created with the setup link", "staff", acct.Name, "ip", s.clientIP(r))
	http.Redirect(w, r, "/login?done=first_admin", http.StatusSeeOther)
}

// accountError is the message shown for NewAccount's errors.
func accountError(err error) string {
	switch {
	case errors.Is(err, ErrBadName):
		return "A name is 1-64 characters: lowercase letters, digits and . _ @ -, starting with a letter or digit."
	case errors.Is(err, ErrBadRole):
		return "The role is viewer, agent or admin."
	case errors.Is(err, ErrWeakPassword):
		return "A password has 10 to 72 bytes."
	}
	return "The account could not be made."
}

type staffView struct {
	Accounts []store.StaffAccount
	Audit    []store.StaffAudit
	Roles    []string
	Name     string // the add form's name after an error
	Role     string
}

func (s *Server) staffPage(w http.ResponseWriter, r *http.Request, sess *session) {
	s.showStaff(w, r, sess, http.StatusOK, "", staffView{Role: RoleViewer})
}

func (s *Server) showStaff(w http.ResponseWriter, r *http.Request, sess *session, code int, msg string, sv staffView) {
	var err error
	if sv.Accounts, err = s.st.ListStaff(r.Context()); err != nil {
		s.fail(w, r, err)
		return
	}
	if sv.Audit, err = s.st.StaffAuditLog(r.Context(), 50); err != nil {
		s.fail(w, r, err)
		return
	}
	sv.Roles = []string{RoleViewer, RoleAgent, RoleAdmin}
	s.render(w, r, code, "staff", view{Title: "Staff", Nav: "staff", Session: sess, Error: msg, Page: sv})
}

// addStaff adds an account with the password the admin chose (the staff member changes it by
// asking for a reset; there is no e-mail).
func (s *Server) addStaff(w http.ResponseWriter, r *http.Request, sess *session) {
	sv := staffView{Name: NormalizeName(r.PostFormValue("name")), Role: r.PostFormValue("role")}
	acct, err := NewAccount(sv.Name, sv.Role, r.PostFormValue("password"), s.opts.BcryptCost, s.opts.Now())
	if err != nil {
		s.showStaff(w, r, sess, http.StatusBadRequest, accountError(err), sv)
		return
	}
	if err := s.st.AddStaffBy(r.Context(), acct, sess.name); err != nil {
		if errors.Is(err, store.ErrExists) {
			s.showStaff(w, r, sess, http.StatusConflict, "An account of that name exists.", sv)
			return
		}
		s.fail(w, r, err)
		return
	}
	s.log.Info("dashboard: staff account added", "staff", sess.name, "account", acct.Name, "role", acct.Role)
	http.Redirect(w, r, "/staff?done=staff_added", http.StatusSeeOther)
}

// disableStaff disables (disabled=1, ending its sessions) or enables (disabled=0) an account. An
// admin cannot disable their own account, so that one admin always remains able to act.
func (s *Server) disableStaff(w http.ResponseWriter, r *http.Request, sess *session) {
	name := NormalizeName(r.PathValue("name"))
	disabled := r.PostFormValue("disabled") == "1"
	if disabled && name == sess.name {
		s.showStaff(w, r, sess, http.StatusBadRequest, "You cannot disable your own account.", staffView{Role: RoleViewer})
		return
	}
	if s.failed(w, r, s.st.SetStaffDisabled(r.Context(), name, disabled, sess.name, s.opts.Now())) {
		return
	}
	done := "staff_enabled"
	if disabled {
		done = "staff_disabled"
	}
	s.log.Info("dashboard: staff account "+map[bool]string{true: "disabled", false: "enabled"}[disabled], "staff", sess.name, "account", name)
	http.Redirect(w, r, "/staff?done="+done, http.StatusSeeOther)
}

// resetStaff gives an account a new password chosen by the admin and ends its sessions.
func (s *Server) resetStaff(w http.ResponseWriter, r *http.Request, sess *session) {
	name := NormalizeName(r.PathValue("name"))
	password := r.PostFormValue("password")
	if err := CheckPassword(password); err != nil {
		s.showStaff(w, r, sess, http.StatusBadRequest, accountError(err), staffView{Role: RoleViewer})
		return
	}
	acct, err := NewAccount(name, RoleViewer, password, s.opts.BcryptCost, s.opts.Now()) // hashes; the role is kept
	if err != nil {
		s.showStaff(w, r, sess, http.StatusBadRequest, accountError(err), staffView{Role: RoleViewer})
		return
	}
	if s.failed(w, r, s.st.SetStaffPassword(r.Context(), name, acct.PasswordHash, sess.name, s.opts.Now())) {
		return
	}
	s.log.Info("dashboard: staff password reset", "staff", sess.name, "account", name)
	if name == sess.name { // their own: the session just ended
		http.Redirect(w, r, "/login?done=staff_password", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/staff?done=staff_password", http.StatusSeeOther)
}
