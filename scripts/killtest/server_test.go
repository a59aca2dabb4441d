package main

import (
	"slices"
	"strings"
	"testing"
)

// A PostgreSQL URL's password is not on serve's command line (every local user's ps shows it) nor
// in the log: it goes in the environment, as the bot token does.
func TestServerCommandHidesTheDatabasePassword(t *testing.T) {
	const url = "postgres://app:s3cretpw@127.0.0.1:5432/killtest?sslmode=disable"
	s := &server{bin: "cropshield", db: url, dir: t.TempDir(), addr: "127.0.0.1:1"}
	cmd, shown := s.command()
	for _, a := range cmd.Args {
		if strings.Contains(a, "s3cretpw") {
			t.Errorf("argument %q shows the password", a)
		}
	}
	if strings.Contains(shown, "s3cretpw") {
		t.Errorf("the logged command shows the password: %s", shown)
	}
	if !slices.Contains(cmd.Env, "CROPSHIELD_DB="+url) {
		t.Errorf("the database is not in serve's environment")
	}
	// A bbolt file stays an argument.
	s.db = ""
	cmd, _ = s.command()
	if i := slices.Index(cmd.Args, "--db"); i < 0 || !strings.HasSuffix(cmd.Args[i+1], "cropshield.db") {
		t.Errorf("bbolt file not passed: %q", cmd.Args)
	}
}
