package pgtest

import (
	"context"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// Each test gets its own empty database on a server that commits for real.
func TestURL(t *testing.T) {
	ctx := context.Background()
	a, b := URL(t), URL(t)
	if a == b {
		t.Fatalf("two tests share database %s", a)
	}
	conn, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var fsync string
	if err := conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil {
		t.Fatal(err)
	}
	if fsync != "on" {
		t.Errorf("fsync = %s, want on", fsync)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("a new database has %d tables", n)
	}
}

// Each test's schema holds its own tables.
func TestSchema(t *testing.T) {
	ctx := context.Background()
	a, b := Schema(t), Schema(t)
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	if _, err := ca.Exec(ctx, "CREATE TABLE kv (k int); INSERT INTO kv VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.Exec(ctx, "CREATE TABLE kv (k int)"); err != nil {
		t.Fatalf("the same table in another schema: %v", err)
	}
	var n int
	if err := cb.QueryRow(ctx, "SELECT count(*) FROM kv").Scan(&n); err != nil || n != 0 {
		t.Errorf("the other schema's table has %d rows, %v", n, err)
	}
}

func TestFindBin(t *testing.T) {
	notOnPath := func(string) (string, error) { return "", errors.New("not found") }
	debian := t.TempDir()
	for _, v := range []string{"13", "15"} {
		dir := filepath.Join(debian, v, "bin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"initdb", "postgres"} {
			if err := os.WriteFile(filepath.Join(dir, name), nil, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	if dir, err := findBin(notOnPath, filepath.Join(debian, "*", "bin")); err != nil || dir != filepath.Join(debian, "15", "bin") {
		t.Errorf("Debian's binaries: %q, %v; want the newest version's", dir, err)
	}
	_, err := findBin(notOnPath, filepath.Join(t.TempDir(), "*", "bin"))
	if err == nil || !strings.Contains(err.Error(), "apt-get install postgresql") || !strings.Contains(err.Error(), EnvURL) {
		t.Errorf("no binaries: %v, want what to install or set", err)
	}
}

func TestMustRunInCI(t *testing.T) {
	t.Setenv("CI", "true")
	if !mustRun() {
		t.Error("CI=true: missing PostgreSQL skips the tests")
	}
	t.Setenv("CI", "")
	if mustRun() {
		t.Error("outside CI: missing PostgreSQL fails the tests")
	}
}

// A server started on a port that another test binary's server took since it was free (ports are
// only free a moment ago) fails to listen and exits: it is not mistaken for that other server,
// which answers on the port until ours is gone, so that the caller tries another port.
func TestPostgresOnATakenPort(t *testing.T) {
	URL(t) // this binary's server, on its port
	if srv.cmd == nil {
		t.Skip("the server is " + EnvURL + "'s, not started here")
	}
	u, err := url.Parse(srv.url)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	bin, err := findBin(exec.LookPath, "/usr/lib/postgresql/*/bin")
	if err != nil {
		t.Fatal(err)
	}
	cred, err := credential()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", dirPrefix) // not t.TempDir(): the postgres user must reach it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err) // removeStale removes it if this test is killed
	}
	data, err := initCluster(bin, dir, cred)
	if err != nil {
		t.Fatal(err)
	}
	var other server
	err = other.postgres(bin, data, port, cred)
	t.Cleanup(func() { _ = other.stop() })
	if err == nil {
		t.Fatalf("a server on %s's port %d started: it took the other server for itself", srv.url, port)
	}
	t.Logf("refused: %v", err)
}
