package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cropshield/cropshield/internal/testenv"
)

// TestKillUnderLoad runs killtest small: 60 Telegram updates and 2 web chat clients while the
// server is killed 3 times. No message is answered twice and none that wants no answer gets one.
// None is lost, except for the two open gaps of issue 14, which are logged: a reply attempted
// just before a kill is not sent again (at most once), and a web chat POST that failed after
// reaching the server cannot be sent again while the web chat ignores client message ids.
func TestKillUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills cropshield serve: not with -short")
	}
	c := config{
		bin: filepath.Join(t.TempDir(), "cropshield"), build: true, ortLib: testenv.ORTLib(t),
		model: testenv.ShippedModel(t), dir: filepath.Join(t.TempDir(), "data"),
		updates: 60, webClients: 2, webMsgs: 6, kills: 3, seed: 7, rate: 15,
		settle: 45 * time.Second, webIDField: "client_id", webRetry: "auto",
	}
	res := runLogged(t, c, 10*time.Minute)
	if res.kills != 3 || res.starts != 5 {
		t.Errorf("%d kills and %d starts, want 3 and 5 (3 after the kills, the first, one orderly)", res.kills, res.starts)
	}
	if res.tg.messages != 60 || res.tg.expect == 0 || res.web.messages != 12 {
		t.Errorf("%d Telegram updates (%d wanting an answer) and %d web messages, want 60 (some) and 12",
			res.tg.messages, res.tg.expect, res.web.messages)
	}
	// Duplicates and answers to what wants none fail. So does every loss but one kind, logged: a
	// Telegram reply attempted just before a kill is not sent again (at most once: the Bot API
	// has no idempotency key, so it may have reached the chat). The web chat sends a reply
	// attempted before a kill again (its outbox died with the process) and its page sends a
	// message again with the same client id, so it loses nothing.
	if res.tg.dups+res.tg.unexpected+res.web.dups+res.tg.outOfOrder != 0 {
		t.Errorf("answered twice: %d Telegram, %d web chat; %d Telegram answers to messages that want none, %d out of their chat's order",
			res.tg.dups, res.web.dups, res.tg.unexpected, res.tg.outOfOrder)
	}
	if lost := res.tg.lost - res.tg.lostAttempted; lost != 0 {
		t.Errorf("Telegram: %d lost", lost)
	}
	if !res.webIDs {
		t.Error("the web chat does not take the page's client_id as the message's id")
	}
	if res.web.lost != 0 {
		t.Errorf("web chat: %d lost (%d replies attempted before a kill, %d after a POST that failed after reaching the server)",
			res.web.lost, res.web.lostAttempted, res.web.lostUnsent)
	}
	if n := res.tg.lostAttempted; n > 0 {
		t.Logf("Telegram replies attempted just before a kill and not sent again (at most once): %d", n)
	}
	if t.Failed() && res.dir != "" {
		if log, err := os.ReadFile(res.log); err == nil && len(log) > 20000 {
			t.Logf("server log (last 20 kB):\n%s", log[len(log)-20000:])
		}
	}
}

// runLogged runs the kill test c (built with -race when the test is), logs its progress and
// summary, and fails the test if run returned an error.
func runLogged(t *testing.T, c config, timeout time.Duration) *result {
	t.Helper()
	if raceBuild {
		c.buildFlags = []string{"-race"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var progress strings.Builder
	res, err := run(ctx, c, &progress)
	var summary strings.Builder
	if res != nil {
		res.print(&summary)
	}
	t.Log(progress.String() + summary.String())
	if err != nil {
		t.Fatal(err)
	}
	return res
}
