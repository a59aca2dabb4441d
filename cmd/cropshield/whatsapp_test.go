package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/types"

	"github.com/cropshield/cropshield/adapters/whatsapp"
)

func TestWhatsAppOptions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		usage bool
		all   bool
	}{
		{"defaults", nil, false, false},
		{"every group photo", []string{"--whatsapp-group-photos", "all"}, false, true},
		{"bad group photos", []string{"--whatsapp-group-photos", "some"}, true, false},
		{"too fast per chat", []string{"--whatsapp-chat-interval", "100ms"}, true, false},
		{"too fast overall", []string{"--whatsapp-global-interval", "10ms"}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c whatsappConfig
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			c.register(fs)
			if err := parseFlags(fs, tc.args, io.Discard); err != nil {
				t.Fatal(err)
			}
			opts, err := c.options()
			if errors.Is(err, errUsage) != tc.usage || opts.GroupAllPhotos != tc.all {
				t.Fatalf("options() = %+v, %v", opts, err)
			}
			if err == nil && (opts.ChatInterval != time.Second || opts.DiagnoseWord != "/diagnose") {
				t.Errorf("defaults %+v", opts)
			}
		})
	}
	for _, tc := range []struct{ flag, db, want string }{
		{"", "data/cropshield.db", filepath.Join("data", "whatsapp.db")},
		{"/var/lib/wa.db", "data/cropshield.db", "/var/lib/wa.db"},
		{"postgres://u:p@h/db", "x.db", "postgres://u:p@h/db"},
	} {
		if got := whatsappDBLocation(tc.flag, tc.db); got != tc.want {
			t.Errorf("whatsappDBLocation(%q, %q) = %q, want %q", tc.flag, tc.db, got, tc.want)
		}
	}
}

// TestWhatsAppDBPasswordNeverPrinted: a postgres:// URL from the environment is used but -h
// does not show it.
func TestWhatsAppDBPasswordNeverPrinted(t *testing.T) {
	t.Setenv("CROPSHIELD_WHATSAPP_DB", "postgres://bot:s3cretPassw0rd@db.example/cropshield")
	var c whatsappConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c.register(fs)
	var out bytes.Buffer
	if err := parseFlags(fs, []string{"-h"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	if strings.Contains(out.String(), "s3cretPassw0rd") || !strings.Contains(out.String(), "whatsapp-db") {
		t.Errorf("help output shows the password or lacks the flag:\n%s", out.String())
	}
	if !strings.HasPrefix(c.db, "postgres://bot:s3cretPassw0rd@") {
		t.Errorf("the environment's URL is not used: %q", c.db)
	}
}

// linkTestDevice saves a linked device in the WhatsApp store beside db, as pairing does.
func linkTestDevice(t *testing.T, db string) {
	t.Helper()
	ctx := context.Background()
	st, err := whatsapp.OpenStore(ctx, whatsappDBLocation("", db), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dev, err := st.Device(ctx)
	if err != nil {
		t.Fatal(err)
	}
	jid := types.NewADJID("254700000001", 0, 12)
	dev.ID, dev.PushName = &jid, "Shamba Doctor"
	dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte{1}, AccountSignatureKey: make([]byte, 32),
		AccountSignature: make([]byte, 64), DeviceSignature: make([]byte, 64)}
	if err := dev.Save(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestWhatsAppCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "data", "cropshield.db")
	for _, tc := range []struct {
		name   string
		args   []string
		before func()
		code   int
		stdout string
		stderr string
	}{
		{name: "no subcommand", args: []string{"whatsapp"}, code: 2, stderr: "link, status or unlink"},
		{name: "unknown subcommand", args: []string{"whatsapp", "pair"}, code: 2, stderr: `unknown whatsapp subcommand "pair"`},
		{name: "extra argument", args: []string{"whatsapp", "status", "--db", db, "now"}, code: 2, stderr: "takes no arguments"},
		{name: "number without country code", args: []string{"whatsapp", "link", "--db", db, "--phone", "0712345678"}, code: 2, stderr: "with + and the country code"},
		{name: "number too short", args: []string{"whatsapp", "link", "--db", db, "--phone", "+2547"}, code: 2, stderr: "8 to 15 digits"},
		{name: "status before linking", args: []string{"whatsapp", "status", "--db", db}, code: 0, stdout: "linked:   no (run: cropshield whatsapp link)"},
		{name: "unlink before linking", args: []string{"whatsapp", "unlink", "--db", db}, code: 1, stderr: "no phone linked"},
		{name: "status after linking", args: []string{"whatsapp", "status", "--db", db}, before: func() { linkTestDevice(t, db) }, code: 0,
			stdout: "linked:   +254700000001 (Shamba Doctor)"},
		{name: "link while linked", args: []string{"whatsapp", "link", "--db", db}, code: 1, stderr: "already linked: +254700000001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, &stdout, &stderr); code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stdout %q lacks %q or stderr %q lacks %q", stdout.String(), tc.stdout, stderr.String(), tc.stderr)
			}
		})
	}
	fi, err := os.Stat(filepath.Join(filepath.Dir(db), "whatsapp.db"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("WhatsApp store beside the database: %v %v", fi, err)
	}
}

// TestServeWhatsAppNotLinked: with --whatsapp but no linked phone, serve keeps serving the web
// chat and /healthz says what to do.
func TestServeWhatsAppNotLinked(t *testing.T) {
	db := filepath.Join(t.TempDir(), "data", "cropshield.db")
	c := testServeConfig(t, db)
	c.whatsapp = whatsappConfig{enabled: true, groupPhotos: "addressed", diagnoseWord: "/diagnose", chatInterval: time.Second,
		globalInterval: 300 * time.Millisecond, replyWindow: time.Hour}
	base, stop := launchServe(t, c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	hc := browser(t)
	var code int
	var body []byte
	for { // the adapter's Run returns at once; wait until /healthz shows it and the web chat open
		code, body = get(t, hc, base+"/healthz")
		if !strings.Contains(string(body), ": starting") && !strings.Contains(string(body), "whatsapp: running") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code != 503 || !strings.Contains(string(body), "whatsapp: failed: whatsapp: no phone linked: run `cropshield whatsapp link`") ||
		!strings.Contains(string(body), "webchat: running") {
		t.Errorf("/healthz: %d\n%s", code, body)
	}
	if code, _ := get(t, hc, base+"/"); code != 200 {
		t.Errorf("web chat: %d", code)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
}
