package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cropshield/cropshield/internal/pgtest"
	"github.com/cropshield/cropshield/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestKillUnderLoadReplicas runs killtest's multi-replica mode small: two replicas of cropshield
// serve on one PostgreSQL database, Telegram by webhook behind a load balancer (the fake Bot API
// posts each update to either replica, again to the other on a failure, one chat's in order),
// 100 updates, one replica killed with -9 and started again with the same name. No update is
// answered twice, none that wants no answer gets one, each chat's answers come in order, no
// replica refuses the webhook's secret, and none is lost but a reply attempted just before the
// kill (at most once; logged). Skipped where PostgreSQL is absent (pgtest says why).
func TestKillUnderLoadReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills cropshield serve: not with -short")
	}
	pgURL := pgtest.URL(t)
	c := config{
		bin: filepath.Join(t.TempDir(), "cropshield"), build: true, ortLib: testenv.ORTLib(t),
		model: testenv.ShippedModel(t), dir: filepath.Join(t.TempDir(), "data"),
		updates: 100, kills: 1, seed: 11, rate: 25, settle: 30 * time.Second,
		webIDField: "client_id", webRetry: "auto",
		replicas: 2, db: "postgres", pgURL: pgURL, webhook: true, hookConns: 16,
	}
	res := runLogged(t, c, 8*time.Minute)
	if res.kills != 1 || res.starts != 5 {
		t.Errorf("%d kills and %d starts, want 1 and 5 (2 first, 1 after the kill, 2 orderly)", res.kills, res.starts)
	}
	if res.tg.messages != 100 || res.tg.expect == 0 {
		t.Errorf("%d Telegram updates (%d wanting an answer), want 100 (some)", res.tg.messages, res.tg.expect)
	}
	if len(res.hookTaken) != 2 || res.hookTaken[0] == 0 || res.hookTaken[1] == 0 {
		t.Errorf("updates taken by each replica: %v, want some by both", res.hookTaken)
	}
	if res.tg.dups+res.tg.unexpected+res.tg.outOfOrder != 0 {
		t.Errorf("Telegram: %d answered twice, %d answers to messages that want none, %d out of their chat's order",
			res.tg.dups, res.tg.unexpected, res.tg.outOfOrder)
	}
	if n := res.hookProblems(); n != 0 {
		t.Errorf("webhook: %d deliveries refused for the secret or webhooks deleted (%v, %d deletes, %d secrets)",
			n, res.hookFailures, res.hookDeletes, res.hookSecrets)
	}
	if lost := res.tg.lost - res.tg.lostAttempted; lost != 0 {
		t.Errorf("Telegram: %d lost", lost)
	}
	if n := res.tg.lostAttempted; n > 0 {
		t.Logf("Telegram replies attempted just before the kill and not sent again (at most once): %d", n)
	}
	if t.Failed() && res.dir != "" {
		for _, name := range []string{"serve-r1.log", "serve-r2.log"} {
			if log, err := os.ReadFile(filepath.Join(res.dir, name)); err == nil && len(log) > 15000 {
				t.Logf("%s (last 15 kB):\n%s", name, log[len(log)-15000:])
			}
		}
	}
}
