package store

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cropshield/cropshield/internal/dburl"
	"github.com/cropshield/cropshield/internal/pgtest"
	"github.com/jackc/pgx/v5"
)

// The store's tests run on bbolt, or on PostgreSQL with CROPSHIELD_STORE_BACKEND=postgres (make
// test runs them both ways). Tests of the bbolt file itself skip on PostgreSQL (skipOnPG).

// backendEnv selects the engine the store's tests run on.
const backendEnv = "CROPSHIELD_STORE_BACKEND"

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// onPG reports whether the tests run on PostgreSQL.
func onPG() bool { return os.Getenv(backendEnv) == "postgres" }

// skipOnPG skips a test about the bbolt file on PostgreSQL, saying why.
func skipOnPG(t testing.TB, why string) {
	t.Helper()
	if onPG() {
		t.Skip("bbolt file: " + why)
	}
}

// newTarget returns where a fresh database is opened: a new bbolt file in a temporary directory,
// or a new PostgreSQL schema (a schema per test: the suite runs in 14-20 s instead of 40-47 s
// with a database per test).
func newTarget(t testing.TB) string {
	t.Helper()
	if onPG() {
		return pgtest.Schema(t)
	}
	return filepath.Join(t.TempDir(), "cropshield.db")
}

// snapshot returns what a closed database holds, to tell whether something wrote to it: a bbolt
// file's bytes, or every row of a PostgreSQL database's tables with its row version (xmin), which
// an UPDATE that writes the same value changes too.
func snapshot(t testing.TB, target string) []byte {
	t.Helper()
	if !dburl.IsURL(target) {
		b, err := os.ReadFile(target)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var out []byte
	for _, q := range []string{
		"SELECT xmin::text, path, key, coalesce(value, '\\x'::bytea), seq, is_bucket FROM kv ORDER BY path, key",
		"SELECT xmin::text, version, applied_at, false, 0, false FROM schema_migrations ORDER BY version",
		"SELECT xmin::text, '', '', '', id, false FROM kv_txid",
	} {
		rows, err := conn.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			out = fmt.Appendf(out, "%v\n", vals)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
