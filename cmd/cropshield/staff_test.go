package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cropshield/cropshield/store"
)

// TestStaffCommands runs `cropshield staff` the way a script does, with the password on stdin.
func TestStaffCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "data", "cropshield.db")
	const secret = "a long secret passphrase"
	steps := []struct {
		args    []string
		stdin   string
		usage   bool   // the error is a usage error
		fails   string // the error contains this ("" = success)
		printed string
	}{
		{args: []string{"list", "--db", db}, fails: "no database"},
		{args: []string{"add", "Alice", "--role", "agent", "--db", db}, stdin: secret + "\n", printed: "added staff account alice (agent)"},
		{args: []string{"add", "--db", db, "bob"}, stdin: "viewerpass99\r\n", printed: "added staff account bob (viewer)"},
		{args: []string{"add", "alice", "--db", db}, stdin: secret + "\n", fails: "exists"},
		{args: []string{"add", "carol", "--role", "root", "--db", db}, stdin: secret + "\n", usage: true, fails: "role"},
		{args: []string{"add", "ada", "--role", "admin", "--db", db}, stdin: secret + "\n", printed: "added staff account ada (admin)"},
		{args: []string{"add", "carol", "--db", db}, stdin: "short\n", usage: true, fails: "password"},
		{args: []string{"add", "carol", "--db", db}, stdin: "", usage: true, fails: "no password"},
		{args: []string{"add", "--db", db}, usage: true, fails: "takes 1 name"},
		{args: []string{"list", "--db", db}, printed: "alice  agent"},
		{args: []string{"remove", "alice", "--db", db}, printed: "removed staff account alice"},
		{args: []string{"remove", "alice", "--db", db}, fails: "no staff account"},
		{args: []string{"rename", "x", "--db", db}, usage: true, fails: "unknown staff subcommand"},
	}
	for i, s := range steps {
		var out, errOut bytes.Buffer
		err := staffCmd(context.Background(), s.args, strings.NewReader(s.stdin), &out, &errOut)
		switch {
		case s.fails == "" && err != nil:
			t.Fatalf("step %d %v: %v", i, s.args, err)
		case s.fails != "" && (err == nil || !strings.Contains(err.Error(), s.fails)):
			t.Fatalf("step %d %v: error %v, want %q", i, s.args, err, s.fails)
		case s.usage != errors.Is(err, errUsage):
			t.Errorf("step %d %v: usage error %v, want %v", i, s.args, errors.Is(err, errUsage), s.usage)
		case !strings.Contains(out.String(), s.printed):
			t.Errorf("step %d %v: printed %q, want %q", i, s.args, out.String(), s.printed)
		}
		if err != nil && strings.Contains(err.Error(), strings.TrimSpace(s.stdin)) && s.stdin != "" {
			t.Errorf("step %d: the error shows the password: %v", i, err)
		}
	}
	st, err := store.Open(context.Background(), db, store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	bob, err := st.GetStaff(context.Background(), "bob")
	if err != nil || bob.Role != "viewer" || bcrypt.CompareHashAndPassword(bob.PasswordHash, []byte("viewerpass99")) != nil {
		t.Fatalf("bob %+v %v", bob, err)
	}
	if cost, _ := bcrypt.Cost(bob.PasswordHash); cost < 12 {
		t.Errorf("bcrypt cost %d", cost)
	}
}

func TestStaffCommandWhileServing(t *testing.T) {
	db := filepath.Join(t.TempDir(), "cropshield.db")
	st, err := store.Open(context.Background(), db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = staffCmd(context.Background(), []string{"list", "--db", db}, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "stop 'cropshield serve' first") {
		t.Fatalf("staff list on a database in use: %v", err)
	}
}
