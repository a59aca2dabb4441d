package dashboard

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"github.com/cropshield/cropshield/internal/browsertest"
	"github.com/cropshield/cropshield/store"
)

const adminPass = "admin pass phrase"

func (e *env) addAdmin() {
	e.t.Helper()
	acct, err := NewAccount("ada", RoleAdmin, adminPass, bcrypt.MinCost, e.clock.now())
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.AddStaff(e.t.Context(), acct); err != nil {
		e.t.Fatal(err)
	}
}

// TestAdminManagesStaff (issue 16, item 13): an admin adds, disables, enables and resets staff
// accounts in the dashboard while it runs; a disabled account's session ends and it cannot log
// in; a new password ends the old sessions; each action is in the audit log; agents and viewers
// cannot do any of it; an admin cannot disable themselves.
func TestAdminManagesStaff(t *testing.T) {
	e := newEnv(t, nil)
	e.addAdmin()
	agent := e.client()
	agentToken := e.login(agent, "alice", agentPass)
	if code, _, _ := e.page(agent, "/staff"); code != http.StatusForbidden {
		t.Errorf("an agent GET /staff: %d, want 403", code)
	}
	for _, path := range []string{"/staff", "/staff/victor/disable", "/staff/victor/password"} {
		if resp := e.post(agent, path, url.Values{"csrf": {agentToken}, "name": {"mallory"}, "role": {RoleAdmin}, "password": {"0123456789ab"}, "disabled": {"1"}}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("an agent POST %s: %s, want 403", path, resp.Status)
		}
	}

	admin := e.client()
	token := e.login(admin, "ada", adminPass)
	if _, body, _ := e.page(admin, "/conversations"); !strings.Contains(body, `href="/staff"`) {
		t.Error("an admin's menu has no Staff entry")
	}
	if _, body, _ := e.page(agent, "/conversations"); strings.Contains(body, `href="/staff"`) {
		t.Error("an agent's menu has a Staff entry")
	}
	expect := func(resp *http.Response, done string) {
		t.Helper()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/staff?done="+done {
			t.Fatalf("%s: %s to %s", done, resp.Status, resp.Header.Get("Location"))
		}
	}
	expect(e.post(admin, "/staff", url.Values{"csrf": {token}, "name": {"Bob"}, "role": {RoleAgent}, "password": {"bobs first password"}}), "staff_added")
	if resp := e.post(admin, "/staff", url.Values{"csrf": {token}, "name": {"carol"}, "role": {RoleAgent}, "password": {"short"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a short password: %s, want 400", resp.Status)
	}
	bob := e.client()
	e.login(bob, "bob", "bobs first password")

	expect(e.post(admin, "/staff/bob/disable", url.Values{"csrf": {token}, "disabled": {"1"}}), "staff_disabled")
	if code, _, _ := e.page(bob, "/conversations"); code != http.StatusSeeOther {
		t.Errorf("a disabled account's session: %d, want a redirect to the login page", code)
	}
	if code := attemptFrom(e, "x"+strings.Repeat("A", 42), "192.0.2.9:1", "bob", "bobs first password"); code != http.StatusForbidden {
		t.Errorf("a disabled account logs in: %d, want 403", code)
	}
	expect(e.post(admin, "/staff/bob/disable", url.Values{"csrf": {token}, "disabled": {"0"}}), "staff_enabled")
	e.login(bob, "bob", "bobs first password")
	expect(e.post(admin, "/staff/bob/password", url.Values{"csrf": {token}, "password": {"bobs second password"}}), "staff_password")
	if code, _, _ := e.page(bob, "/conversations"); code != http.StatusSeeOther {
		t.Errorf("a session from before the new password: %d, want a redirect to the login page", code)
	}
	if code := attemptFrom(e, "y"+strings.Repeat("A", 42), "192.0.2.9:1", "bob", "bobs first password"); code != http.StatusUnauthorized {
		t.Errorf("the old password: %d, want 401", code)
	}
	e.login(bob, "bob", "bobs second password")

	if resp := e.post(admin, "/staff/ada/disable", url.Values{"csrf": {token}, "disabled": {"1"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an admin disables themselves: %s, want 400", resp.Status)
	}
	if resp := e.post(admin, "/staff/nobody/disable", url.Values{"csrf": {token}, "disabled": {"1"}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("disable a missing account: %s, want 404", resp.Status)
	}
	log, err := e.st.StaffAuditLog(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range log {
		got = append(got, a.By+" "+a.Action+" "+a.Name)
	}
	if want := "ada password bob|ada enable bob|ada disable bob|ada add bob"; strings.Join(got, "|") != want {
		t.Errorf("audit %q, want %q", got, want)
	}
	if _, body, _ := e.page(admin, "/staff"); !strings.Contains(body, "ada: disable bob (agent)") {
		t.Errorf("the staff page does not show the audit:\n%s", body)
	}
}

// TestSetupLinkMakesTheFirstAdmin (issue 16, item 13): with no admin, the dashboard gives a
// one-time setup token; its link opens a form that makes the first admin, who then logs in and
// manages staff in the browser; the link then works no more, nor does an expired one, and there
// is none once an admin exists.
func TestSetupLinkMakesTheFirstAdmin(t *testing.T) {
	e := newEnv(t, nil)
	token, err := e.srv.SetupToken(t.Context())
	if err != nil || len(token) != 43 {
		t.Fatalf("setup token %q, %v", token, err)
	}
	browsertest.Exe(t)
	tab := browsertest.Start(t, t.Context(), 1280, 900)
	link := e.web.URL + "/setup?token=" + token
	browsertest.Load(t, tab, "open the setup link", chromedp.Navigate(link))
	browsertest.Steps(t, tab, "fill the setup form", chromedp.SendKeys(chromedp.ID("name"), "Ada"),
		chromedp.SendKeys(chromedp.ID("password"), adminPass), chromedp.SendKeys(chromedp.ID("password2"), adminPass))
	browsertest.Load(t, tab, "create the admin", chromedp.Click(chromedp.ID("setup")))
	if flash := evalJS[string](t, tab, "flash", `document.querySelector(".flash")?.textContent ?? ""`); !strings.Contains(flash, "Admin account created") {
		t.Fatalf("after the setup form: %q", flash)
	}
	browsertest.Steps(t, tab, "log in", chromedp.SendKeys(chromedp.ID("name"), "ada"), chromedp.SendKeys(chromedp.ID("password"), adminPass))
	browsertest.Load(t, tab, "log in", chromedp.Click(chromedp.ID("login")))
	browsertest.Load(t, tab, "open the staff page", chromedp.Click(chromedp.CSS(`header nav a[href="/staff"]`)))
	browsertest.Steps(t, tab, "fill the add form", chromedp.SendKeys(chromedp.ID("new-name"), "bob"),
		chromedp.SetValue(chromedp.ID("new-role"), RoleAgent), chromedp.SendKeys(chromedp.ID("new-password"), "bobs first password"))
	browsertest.Load(t, tab, "add bob", chromedp.Click(chromedp.ID("add")))
	if row := evalJS[string](t, tab, "bob's row", `document.querySelector("#staff-bob")?.textContent ?? ""`); !strings.Contains(row, "agent") || !strings.Contains(row, "active") {
		t.Errorf("bob's row %q", row)
	}
	browsertest.Screenshot(t, tab, "staff.png")
	if a, err := e.st.GetStaff(t.Context(), "ada"); err != nil || a.Role != RoleAdmin {
		t.Fatalf("the first admin: %+v %v", a, err)
	}

	// Used: the link shows no form any more.
	browsertest.Load(t, tab, "open the used link", chromedp.Navigate(link))
	if n := evalJS[int](t, tab, "forms", `document.querySelectorAll("#setup").length`); n != 0 {
		t.Error("a used setup link still shows its form")
	}
	// An admin exists: no new token.
	if again, err := e.srv.SetupToken(t.Context()); err != nil || again != "" {
		t.Errorf("setup token with an admin: %q %v", again, err)
	}
}

// TestSetupLinkExpires: an hour after it was made, the setup link makes no account.
func TestSetupLinkExpires(t *testing.T) {
	e := newEnv(t, nil)
	token, err := e.srv.SetupToken(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c := e.client()
	code, _, csrf := e.page(c, "/setup?token="+url.QueryEscape(token))
	if code != http.StatusOK || csrf == "" {
		t.Fatalf("setup page: %d", code)
	}
	e.clock.advance(SetupLinkTTL + time.Second)
	resp := e.post(c, "/setup", url.Values{"csrf": {csrf}, "token": {token}, "name": {"ada"}, "password": {adminPass}, "password2": {adminPass}})
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("an expired setup link: %s, want 404", resp.Status)
	}
	if _, err := e.st.GetStaff(t.Context(), "ada"); err == nil {
		t.Error("an expired setup link made an account")
	}
	if code, _, _ := e.page(c, "/setup?token=wrong"); code != http.StatusNotFound {
		t.Errorf("a wrong token: %d, want 404", code)
	}
	_ = store.ErrNotFound
}
