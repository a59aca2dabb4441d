// Package adapters_test checks what every channel adapter may depend on.
package adapters_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/cropshield/cropshield"

// TestAdaptersImportBotOnly reads the import graph with `go list`: no package under adapters/
// imports the store or the model (tests aside). The store is the intake's and the handler's, the
// model the handler's; an adapter reaches them only through bot.
func TestAdaptersImportBotOnly(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to read the import graph: %v", err)
	}
	cmd := exec.Command(goTool, "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"/adapters/...")
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	forbidden := []string{module + "/store", module + "/inference"}
	packages := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		pkg, imports := fields[0], fields[1:]
		if pkg == module+"/adapters" {
			continue // this test
		}
		packages++
		sawBot := false
		for _, d := range imports {
			sawBot = sawBot || d == module+"/bot"
			for _, f := range forbidden {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("%s imports %s: adapters import bot only", pkg, d)
				}
			}
		}
		if !sawBot {
			t.Errorf("%s does not import bot: is it an adapter?", pkg)
		}
	}
	if packages < 3 {
		t.Errorf("go list found %d adapter packages, want telegram, whatsapp and webchat at least:\n%s", packages, out)
	}
}
