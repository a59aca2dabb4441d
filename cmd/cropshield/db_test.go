package main

import (
	"bytes"
	"errors"
	"flag"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cropshield/cropshield/internal/dburl"
	"github.com/cropshield/cropshield/internal/pgtest"
	"github.com/cropshield/cropshield/internal/testenv"
)

// TestMain stops the PostgreSQL server pgtest may have started for TestServeOnPostgreSQL.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// dbPass is the password of the database URLs in these tests: it must appear nowhere.
const dbPass = "s3cret-Db-Passw0rd"

// TestDatabaseURLPasswordNeverShown: every command that takes --db takes a postgres:// URL; its
// password appears in no output and no error, whether the server cannot be reached (serve,
// staff, cache), the command works on a bbolt file only and refuses the URL, saying what to use
// instead (backup, compact), or the URL came from CROPSHIELD_DB and -h shows the defaults.
func TestDatabaseURLPasswordNeverShown(t *testing.T) {
	t.Setenv("CROPSHIELD_ORT_LIB", testenv.ORTLib(t))
	t.Setenv("CROPSHIELD_MODEL", testenv.ContractModel(t))
	// Nothing listens on port 1: the connection is refused at once.
	dbURL := "postgres://cropshield:" + dbPass + "@127.0.0.1:1/cropshield?sslmode=disable&connect_timeout=2"
	dir := t.TempDir()
	t.Chdir(dir) // a store that took the URL for a path would create it here
	tests := []struct {
		name string
		args []string
		code int
		want []string // in stderr
	}{
		{"serve", []string{"serve", "--device", "cpu", "--addr", "127.0.0.1:0", "--review-addr", ""}, 1, []string{"open database postgres://cropshield:xxxxx@127.0.0.1:1/"}},
		{"serve with WhatsApp", []string{"serve", "--whatsapp"}, 2, []string{"--whatsapp-db"}},
		{"staff list", []string{"staff", "list"}, 1, []string{"open database postgres://cropshield:xxxxx@127.0.0.1:1/"}},
		{"staff add", []string{"staff", "add", "amina"}, 1, []string{"open database postgres://cropshield:xxxxx@127.0.0.1:1/"}},
		{"cache stats", []string{"cache", "stats"}, 1, []string{"open database postgres://cropshield:xxxxx@127.0.0.1:1/"}},
		{"cache clear", []string{"cache", "clear"}, 1, []string{"open database postgres://cropshield:xxxxx@127.0.0.1:1/"}},
		{"backup", []string{"backup", filepath.Join(dir, "copy.db")}, 2, []string{"backup works on a bbolt file", "pg_dump", "postgres://cropshield:xxxxx@"}},
		{"compact", []string{"compact"}, 2, []string{"compact works on a bbolt file", "autovacuum"}},
		{"whatsapp status", []string{"whatsapp", "status"}, 2, []string{"--whatsapp-db"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, from := range []string{"flag", "environment"} {
				args := append([]string(nil), tt.args...)
				if from == "flag" {
					args = append(args, "--db", dbURL)
				} else {
					t.Setenv("CROPSHIELD_DB", dbURL)
				}
				var stdout, stderr bytes.Buffer
				code := run(args, &stdout, &stderr)
				out := stdout.String() + stderr.String()
				if strings.Contains(out, dbPass) {
					t.Errorf("%s: the password is shown:\n%s", from, out)
				}
				if code != tt.code {
					t.Errorf("%s: exit %d, want %d:\n%s", from, code, tt.code, out)
				}
				for _, w := range tt.want {
					if !strings.Contains(stderr.String(), w) {
						t.Errorf("%s: stderr lacks %q:\n%s", from, w, stderr.String())
					}
				}
			}
		})
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("the commands created %v (%v) in the working directory", entries, err)
	}

	// -h with the URL in the environment shows it redacted.
	t.Setenv("CROPSHIELD_DB", dbURL)
	for _, args := range [][]string{{"serve", "-h"}, {"staff", "list", "-h"}, {"cache", "stats", "-h"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 0 {
			t.Errorf("%q: exit %d", args, code)
		}
		if out := stdout.String() + stderr.String(); strings.Contains(out, dbPass) || !strings.Contains(out, "postgres://cropshield:xxxxx@127.0.0.1:1/") {
			t.Errorf("%q: the help shows the password, or not the redacted URL:\n%s", args, out)
		}
	}
}

func TestRedactDB(t *testing.T) {
	tests := []struct{ in, want string }{
		{"data/cropshield.db", "data/cropshield.db"},
		{"postgres://bot:pw@db.example:5432/cs?sslmode=require", "postgres://bot:xxxxx@db.example:5432/cs?sslmode=require"},
		{"postgresql://bot@db.example/cs", "postgresql://bot@db.example/cs"},
		{"postgres://db.example/cs?password=pw&user=bot", "postgres://db.example/cs?password=xxxxx&user=bot"},
		{"postgres://bot:p%40ss@db.example/cs", "postgres://bot:xxxxx@db.example/cs"},
		// A bare '%' in the password parameter: url.Values drops the pair it cannot unescape.
		{"postgres://db.example/cs?password=50%off&user=bot", "postgres://db.example/cs?password=xxxxx&user=bot"},
	}
	for _, tt := range tests {
		if got := dburl.Redact(tt.in); got != tt.want {
			t.Errorf("dburl.Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// An error quoting the URL or its password, escaped or not, is redacted; errors.Is still sees it.
	base := errors.New("base")
	for _, db := range []string{"postgres://bot:p@ss w0rd@db.example/cs", "postgres://bot:p%40ss%20w0rd@db.example/cs"} {
		err := dburl.RedactError(errors.Join(base, errors.New("cannot parse `"+db+"`: failed for p@ss w0rd and p%40ss%20w0rd")), db)
		if msg := err.Error(); strings.Contains(msg, "w0rd") || !errors.Is(err, base) {
			t.Errorf("%s: %q (errors.Is: %v)", db, msg, errors.Is(err, base))
		}
	}
	if db := "postgres://db.example/cs?password=s3cr%t"; strings.Contains(dburl.RedactError(errors.New("open "+db), db).Error(), "s3cr") {
		t.Errorf("%s: the error shows the password", db)
	}
}

// TestReplicaFlag: --replica defaults to the host name and refuses a name that is not plain.
func TestReplicaFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"serve", "-h"}, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "-replica string") ||
		!strings.Contains(stderr.String(), `(default "`+defaultReplica()+`")`) {
		t.Errorf("serve -h: exit %d, want --replica with the host name as default:\n%s", code, stderr.String())
	}
	for _, bad := range []string{"", "two words", strings.Repeat("r", 65), "a/b"} {
		stderr.Reset()
		if code := run([]string{"serve", "--replica", bad}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "--replica") {
			t.Errorf("--replica %q: exit %d, %s", bad, code, stderr.String())
		}
	}
	var c serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.replica, "replica", defaultReplica(), "")
	t.Setenv("CROPSHIELD_REPLICA", "r2")
	if err := parseFlags(fs, nil, &bytes.Buffer{}); err != nil || c.replica != "r2" {
		t.Errorf("CROPSHIELD_REPLICA=r2: %q, %v", c.replica, err)
	}
	if got := c.intakeConfig().Replica; got != "r2" {
		t.Errorf("the intake's replica is %q, want r2 (its chats' leases are taken under that name)", got)
	}
}

// TestServeOnPostgreSQL: serve runs on a PostgreSQL URL holding a password and logs the database
// at start with the password replaced (xxxxx), and its replica name; the password appears in no
// log line. Skipped where PostgreSQL is absent (pgtest says why).
func TestServeOnPostgreSQL(t *testing.T) {
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), dbPass) // the test server trusts: the password is carried, not checked
	var log lockedBuffer
	addr, stop := startServeOps(t, u.String(), &log, func(c *serveConfig) { c.replica, c.dbPool = "replica-7", 3 })
	if got := status(t, "http://"+addr+"/healthz"); got != http.StatusOK {
		t.Errorf("/healthz: %d", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	start := grepLines(log.String(), "CropShield serving")
	if want := dburl.Redact(u.String()); !strings.Contains(start, "db="+want) && !strings.Contains(start, "db="+strconv.Quote(want)) || !strings.Contains(start, "replica=replica-7") || !strings.Contains(start, ":xxxxx@") {
		t.Errorf("the start line lacks %q or replica=replica-7:\n%s", want, start)
	}
	if strings.Contains(log.String(), dbPass) {
		t.Errorf("the password is in the log:\n%s", log.String())
	}
}
