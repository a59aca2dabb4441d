package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/cropshield/cropshield/internal/browsertest"
	"github.com/cropshield/cropshield/internal/pgtest"
	"github.com/cropshield/cropshield/store"
)

// TestDashboardAcrossReplicas drives the review dashboard in headless Chromium across two real
// `serve` replicas on one PostgreSQL database (each its own store handle, web chat and dashboard
// on its own 127.0.0.1 port; the browser sends the host's cookies to both ports, as to one
// address behind a load balancer): a farmer's photo answered by replica A's handler; the agent
// logs in on A, is logged in on B and sees the conversation and the overlay there, corrects the
// diagnosis on B and sees the correction on A, logs out on B and is logged out on A too, the
// session gone from the database. Skipped where PostgreSQL is absent (pgtest says why).
func TestDashboardAcrossReplicas(t *testing.T) {
	db := pgtest.URL(t)
	browsertest.Exe(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	chatA, reviewA := startServeAsking(t, db, 0, func(c *serveConfig) { c.replica = "replica-a" })
	_, reviewB := startServeAsking(t, db, 0, func(c *serveConfig) { c.replica = "replica-b" })
	// On PostgreSQL `staff add` runs while the replicas serve (README).
	must(t, "staff add", staffCmd(ctx, []string{"add", "alice", "--role", "agent", "--db", db}, strings.NewReader(staffPassword+"\n"), io.Discard, io.Discard))
	st, err := store.Open(ctx, db, store.Options{PoolSize: 2}) // the test's own look at the database
	must(t, "open the database", err)
	t.Cleanup(func() { _ = st.Close() })

	// A farmer sends a leaf in replica A's web chat; A's handler answers with the overlay.
	bctx := browsertest.Start(t, ctx, 1280, 900)
	leaf := filepath.Join(t.TempDir(), "leaf.jpg")
	must(t, "write the photo", os.WriteFile(leaf, leafPhoto(t, 3), 0o600))
	must(t, "open A's web chat", chromedp.Do(bctx, chromedp.Navigate(chatA+"/"), chromedp.WaitVisible(chromedp.ID("composer"))))
	must(t, "upload the photo", chromedp.Do(bctx, chromedp.SetUploadFiles(chromedp.ID("photo"), []string{leaf})))
	browsertest.Do(t, bctx, "A's diagnosis", browsertest.Poll(`document.querySelectorAll(".msg.bot.diagnosis img").length >= 1`))

	// The agent logs in on A's login page.
	tab, closeTab := chromedp.NewContext(bctx)
	t.Cleanup(closeTab)
	must(t, "open A's login page", chromedp.Do(tab, chromedp.Navigate(reviewA+"/login"), chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("name"), "alice"), chromedp.SendKeys(chromedp.ID("password"), staffPassword)))
	if _, err := chromedp.RunResponse(tab, chromedp.Click(chromedp.ID("login"))); err != nil {
		t.Fatalf("log in on A: %v", err)
	}
	if loc := browsertest.Do(t, tab, "A's page after login", chromedp.Location()); loc != reviewA+"/conversations" {
		t.Fatalf("after logging in on A: %s", loc)
	}
	token := staffSessionToken(t, tab, reviewA)
	idHash := storedSessionKey(token)
	if _, err := st.GetStaffSession(ctx, idHash); err != nil {
		t.Fatalf("the session is not in the database after logging in: %v", err)
	}

	// On B: logged in, the conversation A's handler stored, its overlay (served by B).
	if _, err := chromedp.RunResponse(tab, chromedp.Navigate(reviewB+"/conversations")); err != nil {
		t.Fatalf("open B's conversations: %v", err)
	}
	if loc := browsertest.Do(t, tab, "B's page", chromedp.Location()); loc != reviewB+"/conversations" {
		t.Fatalf("B sent the logged-in agent to %s (the session is not shared)", loc)
	}
	if who := browsertest.Do(t, tab, "B's logout form", chromedp.Text(chromedp.CSS("form.logout"))); !strings.Contains(who, "alice") {
		t.Errorf("B's page header %q: want alice logged in", who)
	}
	if row := browsertest.Do(t, tab, "B's conversation row", chromedp.Text(chromedp.CSS("table.conversations tbody tr"))); !strings.Contains(row, "Web visitor") || !strings.Contains(row, "webchat") {
		t.Fatalf("B's conversation row %q", row)
	}
	if _, err := chromedp.RunResponse(tab, chromedp.Click(chromedp.CSS("a.conv"))); err != nil {
		t.Fatalf("open the conversation on B: %v", err)
	}
	browsertest.Do(t, tab, "B's overlay loaded", browsertest.Poll(`(() => { const o = [...document.querySelectorAll("img.overlay")];
		return o.length === 1 && o[0].complete && o[0].naturalWidth >= 600 && o[0].src.startsWith(location.origin); })()`))

	// A correction recorded on B (its form's CSRF token checked by B) ...
	if _, err := chromedp.RunResponse(tab, chromedp.Click(chromedp.CSS("a.photo-link"))); err != nil {
		t.Fatalf("open the photo on B: %v", err)
	}
	photoB := browsertest.Do(t, tab, "photo URL on B", chromedp.Location())
	other := browsertest.Do(t, tab, "another class", chromedp.Evaluate[string](
		`[...document.querySelectorAll("#class option")].map(o => o.value).find(v => v !== document.querySelector("#class").value)`))
	must(t, "choose the class", chromedp.Do(tab, chromedp.SetValue(chromedp.ID("class"), other)))
	if _, err := chromedp.RunResponse(tab, chromedp.Click(chromedp.ID("correct"))); err != nil {
		t.Fatalf("save the correction on B: %v", err)
	}
	if v := browsertest.Do(t, tab, "B's verdict", chromedp.Text(chromedp.CSS("p.verdict"))); !strings.Contains(v, "Corrected to") || !strings.Contains(v, "by alice") {
		t.Fatalf("B's verdict %q", v)
	}
	// ... is shown by A.
	if !strings.HasPrefix(photoB, reviewB+"/photos/") {
		t.Fatalf("photo URL %s is not B's", photoB)
	}
	photoA := reviewA + strings.TrimPrefix(photoB, reviewB)
	if _, err := chromedp.RunResponse(tab, chromedp.Navigate(photoA)); err != nil {
		t.Fatalf("open the photo on A: %v", err)
	}
	if loc := browsertest.Do(t, tab, "A's photo page", chromedp.Location()); loc != photoA {
		t.Fatalf("A sent the agent to %s", loc)
	}
	shown := browsertest.Do(t, tab, "A's current verdict", chromedp.Text(chromedp.ID("current-verdict")))
	chosen := browsertest.Do(t, tab, "the class's label", chromedp.Evaluate[string](`document.querySelector("#class option[value='`+other+`']").textContent`))
	if !strings.Contains(shown, "corrected by alice") || !strings.Contains(shown, strings.TrimSpace(chosen)) {
		t.Fatalf("A shows %q, want the correction to %q by alice", shown, chosen)
	}

	// Logging out on B ends the session in the database, so on A too.
	must(t, "back to B", chromedp.Do(tab, chromedp.Navigate(reviewB+"/conversations"), chromedp.WaitVisible(chromedp.ID("logout"))))
	if _, err := chromedp.RunResponse(tab, chromedp.Click(chromedp.ID("logout"))); err != nil {
		t.Fatalf("log out on B: %v", err)
	}
	if _, err := st.GetStaffSession(ctx, idHash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after logging out on B the session is still in the database (%v)", err)
	}
	// The browser no longer has the cookie; A must refuse the session even if it still had it.
	httpOnly := true
	_, err = chromedp.Call(tab, network.SetCookie, network.SetCookieParams{Name: staffSessionCookie, Value: token, URL: reviewA, HTTPOnly: &httpOnly})
	must(t, "restore the old cookie", err)
	if _, err := chromedp.RunResponse(tab, chromedp.Navigate(reviewA+"/conversations")); err != nil {
		t.Fatalf("open A's conversations: %v", err)
	}
	if loc := browsertest.Do(t, tab, "A's page after logout", chromedp.Location()); !strings.HasPrefix(loc, reviewA+"/login") {
		t.Fatalf("after logging out on B, A still shows %s to the old session", loc)
	}
}

// staffSessionCookie names the dashboard's session cookie over plain HTTP (dashboard/auth.go).
const staffSessionCookie = "cropshield_staff"

// staffSessionToken returns the dashboard session cookie the browser holds for base.
func staffSessionToken(t *testing.T, tab context.Context, base string) string {
	t.Helper()
	got, err := chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{URLs: []string{base}})
	must(t, "read the cookies", err)
	for _, c := range got.Cookies {
		if c.Name == staffSessionCookie {
			return c.Value
		}
	}
	t.Fatalf("no %s cookie for %s", staffSessionCookie, base)
	return ""
}

// storedSessionKey is the key under which the dashboard stores a session (dashboard.hashToken):
// the test looks the session up in the database with it.
func storedSessionKey(token string) string {
	sum := sha256.Sum256([]byte("cropshield-staff-session:" + token))
	return hex.EncodeToString(sum[:])
}
