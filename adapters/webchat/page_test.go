package webchat_test

import (
	"testing"

	"github.com/cropshield/cropshield/adapters/webchat"
)

// TestOpenPageKeepsUpAfterRestart: a page left open while the server restarts polls with the
// last seq it saw; the new server's entries for its chat continue after it, so the page shows
// them (numbered from 1 again they stayed below it and never showed).
func TestOpenPageKeepsUpAfterRestart(t *testing.T) {
	before := newEnv(t, webchat.Options{})
	before.run(t)
	c := before.browser(t)
	var last uint64
	for _, text := range []string{"one", "two", "three"} {
		es := before.send(t, c, upload{text: text, after: last})
		last = es[len(es)-1].Seq
	}

	restarted := newEnv(t, webchat.Options{}) // a new process: nothing in memory
	restarted.run(t)
	if es := restarted.messages(t, c, last); len(es) != 0 {
		t.Fatalf("poll after the restart: %+v", es)
	}
	es := restarted.send(t, c, upload{text: "four", after: last})
	if len(es) != 2 || es[0].Text != "four" || es[1].Text != "got: four" || es[0].Seq <= last {
		t.Fatalf("after the restart the page (last seq %d) gets %+v, want its message and the reply after it", last, es)
	}
}
