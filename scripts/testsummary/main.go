// Command testsummary reads `go test -json` on stdin, prints what `go test` prints without
// -json (each package's ok/FAIL line, the output of failing tests, build errors) and ends with a
// summary: how many tests passed, failed and were skipped, and why each skipped test skipped, so
// that a test that quietly skips (no ONNX Runtime, no Chromium) shows in `make test`. It exits 1
// when a test or a package failed, or when the input holds no test result at all.
//
//	set -o pipefail; go test -json -race ./... | go run ./scripts/testsummary
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
)

func main() {
	os.Exit(run(os.Stdin, os.Stdout))
}

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // build-output events
}

// skip is a skipped test and its reason.
type skip struct {
	pkg, test, reason string
}

// run copies the usual output of the events on r to w, then the summary; it returns the exit
// status.
func run(r io.Reader, w io.Writer) int {
	out := bufio.NewWriter(w)
	defer out.Flush()
	var (
		pending        = map[string][]string{} // a test's output until it passes, fails or skips
		skips          []skip
		passed, failed int
		pkgFailed      bool
		sawResult      bool
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			// Not an event (go vet or the linker writing to the same pipe): as it came.
			fmt.Fprintf(out, "%s\n", line)
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "build-output":
			out.WriteString(e.Output)
		case "output":
			if e.Test == "" {
				if e.Output != "PASS\n" { // -json runs the tests verbosely: go test alone hides it
					out.WriteString(e.Output)
				}
				continue
			}
			if !isFraming(e.Output) {
				pending[key] = append(pending[key], e.Output)
			}
		case "pass", "fail", "skip":
			lines := pending[key]
			delete(pending, key)
			if e.Test == "" {
				sawResult = true
				pkgFailed = pkgFailed || e.Action == "fail"
				continue
			}
			switch e.Action {
			case "pass":
				passed++
			case "fail":
				failed++
				// Verbose output streams the logs before "--- FAIL"; go test alone prints it first.
				var head, rest []string
				for _, l := range lines {
					if strings.HasPrefix(strings.TrimLeft(l, " "), "--- FAIL") {
						head = append(head, l)
					} else {
						rest = append(rest, l)
					}
				}
				for _, l := range append(head, rest...) {
					out.WriteString(l)
				}
			case "skip":
				skips = append(skips, skip{e.Package, e.Test, skipReason(lines)})
			}
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(out, "testsummary: reading go test -json: %v\n", err)
		return 1
	}
	writeSummary(out, passed, failed, skips)
	switch {
	case failed > 0 || pkgFailed:
		return 1
	case !sawResult:
		fmt.Fprintln(out, "testsummary: no test results on stdin (did go test fail to start?)")
		return 1
	}
	return 0
}

// isFraming tells the lines that verbose output adds around each test ("=== RUN", "=== PAUSE",
// "--- PASS: T (0.00s)", ...); a failing test keeps its "--- FAIL" line, as go test prints it.
func isFraming(s string) bool {
	t := strings.TrimLeft(s, " ")
	return strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- PASS: ") || strings.HasPrefix(t, "--- SKIP: ")
}

// logLine is the first line of a t.Log/t.Skip entry: "    file_test.go:12: message".
var logLine = regexp.MustCompile(`^ {4}[^ :]+\.go:\d+: (.*)$`)

// skipReason is the last entry the test logged (its t.Skip message), without the file:line.
func skipReason(lines []string) string {
	var entry []string
	for _, l := range lines {
		l = strings.TrimRight(l, "\n")
		if m := logLine.FindStringSubmatch(l); m != nil {
			entry = []string{m[1]}
		} else if entry != nil && strings.TrimSpace(l) != "" {
			entry = append(entry, strings.TrimSpace(l))
		}
	}
	if entry == nil {
		return "(no reason given)"
	}
	return strings.Join(entry, " ")
}

// writeSummary prints the counts, then the skipped tests grouped by reason, most frequent first.
func writeSummary(w io.Writer, passed, failed int, skips []skip) {
	fmt.Fprintf(w, "\ntests: %d passed, %d failed, %d skipped\n", passed, failed, len(skips))
	byReason := map[string][]skip{}
	var reasons []string
	for _, s := range skips {
		if _, ok := byReason[s.reason]; !ok {
			reasons = append(reasons, s.reason)
		}
		byReason[s.reason] = append(byReason[s.reason], s)
	}
	slices.SortStableFunc(reasons, func(a, b string) int { return len(byReason[b]) - len(byReason[a]) })
	for _, r := range reasons {
		var names []string
		for _, s := range byReason[r] {
			names = append(names, strings.TrimPrefix(s.pkg, "github.com/cropshield/cropshield/")+"."+s.test)
		}
		fmt.Fprintf(w, "  %d skipped: %s\n      %s\n", len(names), r, strings.Join(names, ", "))
	}
}
