package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cropshield/cropshield/internal/testenv"
	"golang.org/x/sys/unix"
)

// TestServeAddressInUse: a port taken by another program is refused with the flag and the
// environment variable that move it, for the web chat (--addr) and the dashboard (--review-addr).
func TestServeAddressInUse(t *testing.T) {
	t.Setenv("CROPSHIELD_ORT_LIB", testenv.ORTLib(t))
	t.Setenv("CROPSHIELD_MODEL", testenv.ContractModel(t))
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().String()
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"web chat", []string{"--addr", busy, "--review-addr", ""}, []string{"web chat: " + busy + " is already in use", "--addr", "CROPSHIELD_ADDR"}},
		{"dashboard", []string{"--addr", "127.0.0.1:0", "--review-addr", busy}, []string{"review dashboard: " + busy + " is already in use", "--review-addr", "CROPSHIELD_REVIEW_ADDR"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--device", "cpu", "--db", filepath.Join(t.TempDir(), "x.db")}, tc.args...)
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			last := lastLine(stderr.String())
			for _, w := range tc.want {
				if !strings.Contains(last, w) {
					t.Errorf("the error lacks %q: %s", w, last)
				}
			}
		})
	}
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestHelpOfEveryCommand: `cropshield CMD -h` and `cropshield CMD SUB -h` exit 0 with the help
// (`staff -h` was "unknown staff subcommand" and exit 2), and every flag line names its
// environment variable and a plain value name: a backquoted phrase in a usage string became the
// value name ("-ort-lib make deps").
func TestHelpOfEveryCommand(t *testing.T) {
	// The commands are those the usage lists.
	_, list, _ := strings.Cut(usage, "commands:\n")
	var cmds [][]string
	for _, line := range strings.Split(list, "\n") {
		if m := regexp.MustCompile(`^  ([a-z]+)\b`).FindStringSubmatch(line); m != nil {
			cmds = append(cmds, []string{m[1], "-h"})
		}
	}
	subs := map[string][]string{"staff": {"add", "list", "remove"}, "whatsapp": {"link", "status", "unlink"}, "cache": {"stats", "clear"}}
	for _, c := range slices.Clone(cmds) {
		for _, sub := range subs[c[0]] {
			cmds = append(cmds, []string{c[0], sub, "-h"})
		}
	}
	if len(cmds) < 10 {
		t.Fatalf("only %d commands found in the usage: %q", len(cmds), cmds)
	}
	flagLine := regexp.MustCompile(`^  -([a-z0-9-]+)( [^ \[]+)?(.*)$`)
	plain := []string{"", " string", " int", " float", " duration", " value", " uint", " int64", " uint64"}
	for _, args := range cmds {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != 0 {
				t.Errorf("exit %d, want 0", code)
			}
			out := stdout.String() + stderr.String()
			if strings.Contains(out, "cropshield: ") || args[0] != "version" && !strings.Contains(out, "usage") {
				t.Errorf("not the help:\n%s", out)
			}
			flags := 0
			for _, line := range strings.Split(out, "\n") {
				m := flagLine.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				flags++
				if !slices.Contains(plain, m[2]) {
					t.Errorf("-%s has the value name %q (a backquoted word in its usage?): %q", m[1], strings.TrimSpace(m[2]), line)
				}
				if env := "[" + envName(m[1]) + "]"; !strings.Contains(m[3], env) {
					t.Errorf("-%s does not name %s: %q", m[1], env, line)
				}
			}
			if len(args) == 3 && flags == 0 {
				t.Errorf("no flags listed:\n%s", out)
			}
		})
	}
}

// TestFlagsAfterArguments: flags may follow the files and folders (`eval DIR --plot x.png`
// failed: the flags were taken for more folders).
func TestFlagsAfterArguments(t *testing.T) {
	t.Setenv("CROPSHIELD_ORT_LIB", testenv.ORTLib(t))
	t.Setenv("CROPSHIELD_MODEL", testenv.ContractModel(t))
	dir := t.TempDir()
	photo := filepath.Join(dir, "photos", "tomato__late_blight", "1.jpg")
	if err := os.MkdirAll(filepath.Dir(photo), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(photo, testLeaf(t), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"diagnose", photo, "--no-overlay", "--device", "cpu"}, &stdout, &stderr); code != 0 {
		t.Fatalf("diagnose FILE --flags: exit %d: %s", code, stderr.String())
	}
	if _, err := os.Stat(photo + ".overlay.jpg"); !os.IsNotExist(err) {
		t.Errorf("--no-overlay after the file was ignored: %v", err)
	}
	stdout.Reset()
	plot := filepath.Join(dir, "x.png")
	if code := run([]string{"eval", filepath.Join(dir, "photos"), "--plot", plot, "--json", "--device=cpu"}, &stdout, &stderr); code != 0 {
		t.Fatalf("eval DIR --flags: exit %d: %s", code, stderr.String())
	}
	var report struct{ Folder string }
	if err := json.Unmarshal(stdout.Bytes(), &report); err != nil || report.Folder != filepath.Join(dir, "photos") {
		t.Errorf("--json after the folder: %v %+v\n%s", err, report, stdout.String())
	}
	if _, err := os.Stat(plot); err != nil {
		t.Errorf("--plot after the folder: %v", err)
	}
	// After "--" a name that looks like a flag is a file.
	stderr.Reset()
	if code := run([]string{"diagnose", "--device", "cpu", "--", "--no-overlay"}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "--no-overlay: open") {
		t.Errorf("diagnose -- --no-overlay: exit %d: %s", code, stderr.String())
	}
}

// openPTY opens a pseudo-terminal: what a program writes to pts can be read from ptmx.
func openPTY(t *testing.T) (ptmx, pts *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pts.Close() })
	return ptmx, pts
}

// TestProgressOnlyOnTerminal: eval and diagnose draw a progress bar when stderr is a terminal,
// and never into a log file or pipe.
func TestProgressOnlyOnTerminal(t *testing.T) {
	t.Setenv("CROPSHIELD_ORT_LIB", testenv.ORTLib(t))
	t.Setenv("CROPSHIELD_MODEL", testenv.ContractModel(t))
	t.Setenv("CROPSHIELD_LOG_LEVEL", "warn")
	dir := t.TempDir()
	var files []string
	for i := range 3 {
		p := filepath.Join(dir, "tomato__late_blight", strconv.Itoa(i)+".jpg")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, testLeaf(t), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	for _, tc := range []struct {
		args []string
		bar  string
	}{
		{[]string{"eval", "--device", "cpu", dir}, "evaluating contract-v1 on "},
		{append([]string{"diagnose", "--no-overlay", "--device", "cpu"}, files...), "diagnosing"},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			ptmx, pts := openPTY(t)
			var screen bytes.Buffer
			read := make(chan struct{})
			go func() {
				defer close(read)
				_, _ = io.Copy(&screen, ptmx) // ends with EIO once pts is closed
			}()
			if code := run(tc.args, io.Discard, pts); code != 0 {
				t.Errorf("on a terminal: exit %d", code)
			}
			pts.Close()
			<-read
			if !strings.Contains(screen.String(), tc.bar) {
				t.Errorf("no progress bar %q on the terminal: %q", tc.bar, screen.String())
			}
			var log bytes.Buffer
			if code := run(tc.args, io.Discard, &log); code != 0 || strings.Contains(log.String(), tc.bar) {
				t.Errorf("into a file: exit %d, %q", code, log.String())
			}
		})
	}
}
