package main

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cropshield/cropshield/internal/pgtest"
	"github.com/cropshield/cropshield/store"
)

// makeStore writes a little of everything into a new bbolt file through the store's API, closes
// it and returns its digest.
func makeStore(t *testing.T, path string) string {
	t.Helper()
	ctx := t.Context()
	st, err := store.Open(ctx, path, store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	hash := strings.Repeat("ab", 32)
	for i, chat := range []string{"101", "102", "-1003"} {
		in := store.Record{Time: at, Platform: "telegram", ChatID: chat, Direction: store.Inbound, SenderID: "7", SenderName: "Amina", MessageID: "m" + chat, PhotoHash: hash}
		if _, err := st.RecordInbound(ctx, in, &store.Chat{Platform: "telegram", ID: chat, Kind: "private"}, &store.User{Platform: "telegram", ID: "7", Name: "Amina"}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			a := store.Analysis{PhotoHash: hash, ModelVersion: "v2", Top: []store.Candidate{{Class: "tomato__late_blight", Prob: 0.9}}, Overlay: bytes.Repeat([]byte{0xff}, 5000), CreatedAt: at}
			if err := st.PutAnalysis(ctx, a, bytes.Repeat([]byte{0xd8}, 20000), "image/jpeg"); err != nil {
				t.Fatal(err)
			}
		}
		out := store.Record{Time: at.Add(time.Second), Platform: "telegram", ChatID: chat, Direction: store.Outbound, Text: "late blight", ReplyTo: "m" + chat, Kind: "diagnosis"}
		if err := st.ReplySent(ctx, "m"+chat, 0, out, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.AddStaff(ctx, store.StaffAccount{Name: "agnes", Role: "admin", PasswordHash: []byte("$2a$10$x"), Created: at}); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveInbox(ctx, "telegram", []store.InboxUpdate{{ID: 9, Data: []byte(`{"update_id":9}`)}}, 10); err != nil {
		t.Fatal(err)
	}
	d, err := store.Checksum(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// cli runs the command and returns its exit status and outputs.
func cli(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestMigrateCommand(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src.db"), filepath.Join(dir, "new", "dst.db")
	want := makeStore(t, src)

	// Flags in any order; the destination's folder is made.
	code, out, errOut := cli("migrate", "--to", dst, "--from", src)
	if code != 0 || !strings.Contains(out, "verified: sha256 "+want+" on both") {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
	}
	for _, w := range []string{"migrating " + src + " → " + dst, "keys, 4 nested buckets, "} { // progress
		if !strings.Contains(errOut, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errOut)
		}
	}
	for _, w := range []string{"chats", "messages", "staff", "total"} { // counts per bucket
		if !strings.Contains(out, w) {
			t.Errorf("stdout lacks %q:\n%s", w, out)
		}
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the copy: %v, %v; want mode 0600", fi, err)
	}
	if code, out, errOut := cli("checksum", "--db", dst); code != 0 || !strings.Contains(out, "sha256 "+want) {
		t.Errorf("checksum of the copy: exit %d, want sha256 %s\n%s%s", code, want, out, errOut)
	}
	if code, out, errOut := cli("migrate", "--verify-only", "--from", src, "--to", dst); code != 0 || !strings.Contains(out, "hold the same data: sha256 "+want) {
		t.Errorf("verify-only: exit %d\n%s%s", code, out, errOut)
	}

	// Again into the same copy: refused, and the copy stays (migrate did not create it this time).
	code, out, errOut = cli("migrate", "--from", src, "--to", dst)
	if code != 1 || !strings.Contains(errOut, "destination is not empty") || !strings.Contains(errOut, "empty store only") {
		t.Errorf("into a store with data: exit %d, want 1 and 'not empty'\n%s%s", code, out, errOut)
	}
	if code, out, _ := cli("checksum", "--db", dst); code != 0 || !strings.Contains(out, "sha256 "+want) {
		t.Errorf("the refused copy changed or went: exit %d\n%s", code, out)
	}

	// A copy that differs is found and named.
	st, err := store.Open(t.Context(), dst, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.TouchChat(t.Context(), store.Chat{Platform: "telegram", ID: "555", Kind: "private"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = cli("migrate", "--verify-only", "--from", src, "--to", dst)
	if code != 1 || !strings.Contains(errOut, `first difference`) || !strings.Contains(errOut, `"telegram\x00555"`) || !strings.Contains(out, "← the other store") {
		t.Errorf("verify-only of a changed copy: exit %d, want 1 naming the chat\n%s%s", code, out, errOut)
	}
}

// TestMigrateRefusesAServedFile: a bbolt file a server holds is not copied (it would keep
// changing); nothing is left behind.
func TestMigrateRefusesAServedFile(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src.db"), filepath.Join(dir, "dst.db")
	makeStore(t, src)
	served, err := store.Open(context.Background(), src, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer served.Close()
	code, out, errOut := cli("migrate", "--from", src, "--to", dst)
	if code != 1 || !strings.Contains(errOut, "stop the server first") {
		t.Errorf("exit %d, want 1 and 'stop the server first'\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("the destination was left: %v", err)
	}
}

func TestMigrateUsage(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	makeStore(t, src)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no destination", []string{"migrate", "--from", src}, "needs --from SRC and --to DST"},
		{"no source", []string{"migrate", "--to", filepath.Join(dir, "x.db")}, "needs --from SRC and --to DST"},
		{"the same file", []string{"migrate", "--from", src, "--to", filepath.Join(dir, ".", "src.db")}, "the same store"},
		{"an argument", []string{"migrate", "--from", src, "--to", filepath.Join(dir, "x.db"), "extra"}, "takes no arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := cli(tc.args...)
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, want 2 and %q:\n%s", code, tc.want, errOut)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "x.db")); !os.IsNotExist(err) {
		t.Errorf("a refused migrate created its destination: %v", err)
	}
}

// TestMigrateThroughPostgreSQL: bbolt → PostgreSQL → bbolt with the command, the same digest at
// each step, and the URL's password nowhere in the output, -h with CROPSHIELD_TO included.
func TestMigrateThroughPostgreSQL(t *testing.T) {
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), dbPass) // the test server trusts any password
	pg := u.String()
	redacted := strings.Replace(pg, dbPass, "xxxxx", 1)
	dir := t.TempDir()
	src, back := filepath.Join(dir, "src.db"), filepath.Join(dir, "back.db")
	want := makeStore(t, src)

	steps := []struct {
		name string
		args []string
		code int
		want []string // in stdout and stderr
	}{
		{"to PostgreSQL", []string{"migrate", "--from", src, "--to", pg}, 0, []string{"verified: sha256 " + want, "→ " + redacted}},
		{"checksum", []string{"checksum", "--db", pg}, 0, []string{"sha256 " + want + "  " + redacted}},
		{"again", []string{"migrate", "--from", src, "--to", pg}, 1, []string{"destination is not empty", redacted}},
		{"back", []string{"migrate", "--from", pg, "--to", back}, 0, []string{"verified: sha256 " + want}},
		{"verify", []string{"migrate", "--verify-only", "--from", pg, "--to", back}, 0, []string{"hold the same data: sha256 " + want}},
	}
	for _, s := range steps {
		code, out, errOut := cli(s.args...)
		if strings.Contains(out+errOut, dbPass) {
			t.Errorf("%s: the password is shown:\n%s%s", s.name, out, errOut)
		}
		if code != s.code {
			t.Errorf("%s: exit %d, want %d\n%s%s", s.name, code, s.code, out, errOut)
		}
		for _, w := range s.want {
			if !strings.Contains(out+errOut, w) {
				t.Errorf("%s: the output lacks %q:\n%s%s", s.name, w, out, errOut)
			}
		}
	}
	t.Setenv("CROPSHIELD_FROM", pg)
	t.Setenv("CROPSHIELD_TO", pg)
	code, out, errOut := cli("migrate", "-h")
	if code != 0 || strings.Contains(out+errOut, dbPass) || !strings.Contains(errOut, redacted) {
		t.Errorf("migrate -h with the URL in the environment: exit %d, the password shown or the redacted URL not:\n%s%s", code, out, errOut)
	}
}
