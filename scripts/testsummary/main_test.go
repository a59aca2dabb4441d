package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// goTestJSON runs the real `go test -json` on the fixture module in testdata.
func goTestJSON(t *testing.T, fail bool) []byte {
	t.Helper()
	cmd := exec.Command("go", "test", "-json", "-count=1", "./...")
	cmd.Dir = filepath.Join("testdata", "fixture")
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if fail {
		cmd.Env = append(cmd.Env, "FIXTURE_FAIL=1")
	}
	out, err := cmd.Output()
	if _, exit := err.(*exec.ExitError); err != nil && !(fail && exit) {
		t.Fatalf("go test -json: %v", err)
	}
	return out
}

// TestSummary: the usual go test output, then the counts and each skip's reason with its tests;
// the exit status is go test's.
func TestSummary(t *testing.T) {
	var out bytes.Buffer
	if code := run(bytes.NewReader(goTestJSON(t, false)), &out); code != 0 {
		t.Errorf("exit %d, want 0:\n%s", code, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"ok  \tfixture\t",
		"tests: 3 passed, 0 failed, 3 skipped\n",
		"  2 skipped: ONNX Runtime library not found\n      fixture.TestNeedsORT/a, fixture.TestNeedsORT/b\n",
		"  1 skipped: Chromium not found at /usr/bin/chromium: install it\n      fixture.TestNeedsChromium\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("lacks %q:\n%s", want, got)
		}
	}
	for _, noise := range []string{"=== RUN", "--- PASS", "a log line of a passing test", "looking for Chromium", "\nPASS\n"} {
		if strings.Contains(got, noise) {
			t.Errorf("has %q, which go test without -json does not print:\n%s", noise, got)
		}
	}

	out.Reset()
	if code := run(bytes.NewReader(goTestJSON(t, true)), &out); code != 1 {
		t.Errorf("a failing test: exit %d, want 1", code)
	}
	for _, want := range []string{"--- FAIL: TestFails (", ")\n    fixture_test.go:25: boom\nFAIL\nFAIL\tfixture", "tests: 2 passed, 1 failed, 3 skipped"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("a failing test: lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	if code := run(strings.NewReader("# pkg\nbuild failed\n"), &out); code != 1 {
		t.Errorf("no results: exit %d, want 1", code)
	}
}

// TestMakeTestSummarizes: `make test` pipes go test -json through this program with pipefail (so
// a failure still fails make), and CI runs it with -count=1: a cached result hides no skip.
func TestMakeTestSummarizes(t *testing.T) {
	root := filepath.Join("..", "..")
	cmd := exec.Command("make", "-n", "test")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Skipf("make -n test: %v: %s", err, out)
	}
	tests := 0
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.Contains(line, " test ") || strings.Contains(line, "CGO_ENABLED=0") {
			continue
		}
		tests++
		if !strings.Contains(line, "set -o pipefail") || !strings.Contains(line, "-json") || !strings.Contains(line, "| go run ./scripts/testsummary") {
			t.Errorf("a go test of make test without the summary: %s", line)
		}
	}
	if tests < 2 {
		t.Errorf("found %d go test commands in make -n test:\n%s", tests, out)
	}
	if strings.Contains(string(out), "-race ") == false {
		t.Errorf("make test lost -race:\n%s", out)
	}
	ci, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ci), "make test TESTFLAGS=-count=1") {
		t.Errorf(".ci/run does not run make test with -count=1")
	}
}
