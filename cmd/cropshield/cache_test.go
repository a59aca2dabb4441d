package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cropshield/cropshield/store"
)

// TestCacheCommand (issue 16, item 20): `cache stats` shows the analysis cache's size and hit
// rate, `cache clear` empties it and keeps the photos and conversations; while the database is
// in use the error points to the dashboard.
func TestCacheCommand(t *testing.T) {
	db := filepath.Join(t.TempDir(), "cropshield.db")
	ctx := context.Background()
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := cacheCmd(ctx, append(args, "--db", db), &out, &errOut)
		return out.String(), err
	}
	if _, err := run("stats"); err == nil || !strings.Contains(err.Error(), "no database") {
		t.Fatalf("stats without a database: %v", err)
	}
	st, err := store.Open(ctx, db, store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	hash := strings.Repeat("ab", 32)
	now := time.Now()
	if err := st.PutAnalysis(ctx, store.Analysis{PhotoHash: hash, ModelVersion: "v1", Overlay: make([]byte, 3000), CreatedAt: now}, []byte("photo"), "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	in := store.Record{Time: now, Platform: "webchat", ChatID: "w", Direction: store.Inbound, SenderID: "w", MessageID: "m1", PhotoHash: hash}
	if _, err := st.AppendMessage(ctx, in); err != nil {
		t.Fatal(err)
	}
	for i, hit := range []bool{false, true, true, true} {
		out := store.Record{Time: now.Add(time.Duration(i+1) * time.Second), Platform: "webchat", ChatID: "w", Direction: store.Outbound,
			Kind: "diagnosis", PhotoHash: hash, Lang: "en", CacheHit: hit, Text: "answer"}
		if _, err := st.AppendMessage(ctx, out); err != nil {
			t.Fatal(err)
		}
	}
	// In use: the error says where to clear it instead.
	if _, err := run("clear"); err == nil || !strings.Contains(err.Error(), "dashboard's Statistics page") {
		t.Errorf("clear while the database is open elsewhere: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	out, err := run("stats")
	if err != nil || !strings.Contains(out, "analyses:  1\n") || !strings.Contains(out, "overlays:  1\n") ||
		!strings.Contains(out, "hit rate:  75.0 % of the 4 photos answered in the last 30 days (3 from the cache)") {
		t.Fatalf("stats: %v\n%s", err, out)
	}
	if out, err = run("clear"); err != nil || !strings.HasPrefix(out, "removed 1 analyses and 1 heat-map overlays") {
		t.Fatalf("clear: %v\n%s", err, out)
	}
	if out, err = run("stats"); err != nil || !strings.Contains(out, "analyses:  0\n") {
		t.Fatalf("stats after clear: %v\n%s", err, out)
	}
	if _, err := run("purge"); !errors.Is(err, errUsage) {
		t.Errorf("an unknown subcommand: %v, want a usage error", err)
	}

	st, err = store.Open(ctx, db, store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, _, err := st.GetPhoto(ctx, hash); err != nil {
		t.Errorf("the photo after clear: %v", err)
	}
	if msgs, err := st.Messages(ctx, "webchat", "w", 0, 10); err != nil || len(msgs) != 5 {
		t.Errorf("the conversation after clear: %d messages, %v", len(msgs), err)
	}
	if log, err := st.StaffAuditLog(ctx, 1); err != nil || len(log) != 1 || log[0].Action != store.AuditClearCache {
		t.Errorf("audit after clear: %+v %v", log, err)
	}
}
