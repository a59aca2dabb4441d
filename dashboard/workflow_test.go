package dashboard

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/inference/eval"
	"github.com/cropshield/cropshield/store"
)

// TestAgentWorkflow: an agent finds the conversation with the filters, opens the thread (photo,
// overlay, top-3), corrects the diagnosis, replies through the adapter, resolves, reads the
// statistics and exports the dataset and the CSVs.
func TestAgentWorkflow(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	token := e.login(c, "alice", agentPass)
	ctx := t.Context()

	for _, tt := range []struct {
		query string
		found bool
	}{
		{"", true},
		{"attention=1", true},
		{"low=1&platform=webchat&lang=en&kind=private", true},
		{"disease=tomato__late_blight", true},
		{"q=amina", true},
		{"q=sick", true},
		{"q=web-1", true},
		{"from=2025-06-01&to=2025-06-01", true},
		{"from=2025-06-02", false},
		{"platform=telegram", false},
		{"status=resolved", false},
	} {
		code, body, _ := e.page(c, "/conversations?"+tt.query)
		if code != http.StatusOK || strings.Contains(body, `/conversations/`+e.convID) != tt.found {
			t.Errorf("list ?%s: %d, found %v, want %v", tt.query, code, !tt.found, tt.found)
		}
	}

	code, body, _ := e.page(c, "/conversations/"+e.convID)
	for _, want := range []string{`src="/photos/` + e.hash + `/image"`, `class="overlay" src="/photos/` + e.hash + `/overlay"`,
		"Tomato: Late blight", "41%", "my tomato is sick", "I am not sure about this photo.", "needs attention", `id="reply-text"`} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("thread page (%d) lacks %q", code, want)
		}
	}

	// Correct the diagnosis.
	resp := e.post(c, "/photos/"+e.hash+"/correction", url.Values{"csrf": {token}, "action": {"correct"}, "class": {"tomato__early_blight"}, "c": {e.convID}})
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "done=corrected") {
		t.Fatalf("correction: %s %s", resp.Status, resp.Header.Get("Location"))
	}
	corr, err := e.st.GetCorrection(ctx, e.hash)
	if err != nil || corr.Class != "tomato__early_blight" || corr.By != "alice" || corr.ModelClass != e.class || corr.Confirmed {
		t.Fatalf("stored correction %+v %v", corr, err)
	}
	if resp := e.post(c, "/photos/"+e.hash+"/correction", url.Values{"csrf": {token}, "class": {"no_such_class"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown class: %s", resp.Status)
	}
	_, body, _ = e.page(c, "/photos/"+e.hash+"?c="+e.convID)
	if !strings.Contains(body, "Corrected to <strong>Tomato: Early blight</strong> by alice") {
		t.Errorf("photo page does not show the correction")
	}

	// Reply through the adapter.
	resp = e.post(c, "/conversations/"+e.convID+"/reply", url.Values{"csrf": {token}, "text": {"Please send a closer photo of one leaf."}, "sign": {" Amina "}})
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "done=reply") {
		t.Fatalf("reply: %s %s", resp.Status, resp.Header.Get("Location"))
	}
	sent := e.out.sent()
	if len(sent) != 1 || sent[0].Kind != bot.KindStaff || sent[0].Chat.ID != "web-1" || sent[0].Text != "Amina, CropShield support team:\nPlease send a closer photo of one leaf." {
		t.Fatalf("sent %v", sent)
	}
	// Resolve.
	if resp := e.post(c, "/conversations/"+e.convID+"/resolve", url.Values{"csrf": {token}, "resolved": {"1"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("resolve: %s", resp.Status)
	}
	sum, err := e.st.GetSummary(ctx, "webchat", "web-1")
	if err != nil || !sum.Resolved || sum.NeedsAttention || !sum.Corrected || sum.Disease != "tomato__early_blight" || sum.LastStaff != "alice" {
		t.Fatalf("summary after the actions %+v %v", sum, err)
	}
	_, body, _ = e.page(c, "/conversations/"+e.convID+"?done=reply")
	for _, want := range []string{"Reply sent.", "staff: alice", "Please send a closer photo", "Corrected the diagnosis of photo", "Marked the conversation resolved", `id="reopen"`} {
		if !strings.Contains(body, want) {
			t.Errorf("thread after the actions lacks %q", want)
		}
	}

	// Statistics: server-rendered SVG.
	code, body, _ = e.page(c, "/stats?days=7")
	if code != http.StatusOK || !strings.Contains(body, "<svg") || !strings.Contains(body, "<rect class=\"s0\"") || strings.Contains(body, "<script") {
		t.Errorf("stats page %d", code)
	}

	// Exports.
	zipBytes := e.download(c, "/export/dataset.zip", "application/zip")
	zr, err := zip.NewReader(bytes.NewReader(zipBytes), int64(len(zipBytes)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	if got := files[DatasetFolder+"/tomato__early_blight/"+e.hash+".jpg"]; !bytes.Equal(got, e.photo) {
		t.Errorf("dataset zip: files %v", keys(files))
	}
	if m := string(files[DatasetFolder+".csv"]); !strings.Contains(m, "tomato__early_blight,false,tomato__late_blight,v1,alice") {
		t.Errorf("manifest %q", m)
	}
	// The export unzipped is a folder `cropshield eval` reads: one sub-folder per class id.
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	samples, err := eval.Scan(filepath.Join(dir, DatasetFolder), []string{e.class, "tomato__early_blight"})
	if err != nil || len(samples) != 1 || samples[0].Label != "tomato__early_blight" || samples[0].Class != 1 {
		t.Errorf("eval.Scan of the unzipped export: %+v %v", samples, err)
	}
	for path, want := range map[string]string{
		"/export/conversations.csv": "webchat,web-1,private,,Amina,web-1,en",
		"/export/messages.csv":      "in,web-1,Amina,,,en,my tomato is sick," + e.hash + ",tomato__late_blight,0.4100,tomato__early_blight,",
	} {
		b := e.download(c, path, "text/csv; charset=utf-8")
		if _, err := csv.NewReader(bytes.NewReader(b)).ReadAll(); err != nil || !strings.Contains(string(b), want) {
			t.Errorf("%s: %v\n%s", path, err, b)
		}
	}
	if code, _, _ := e.page(c, "/conversations/"+conversationID("webchat", "nobody")); code != http.StatusNotFound {
		t.Errorf("unknown conversation: %d", code)
	}
	if code, _, _ := e.page(c, "/photos/nothex/image"); code != http.StatusNotFound {
		t.Errorf("bad hash: %d", code)
	}
}

func (e *env) download(c *http.Client, path, ctype string) []byte {
	e.t.Helper()
	resp, err := c.Get(e.web.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ctype || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
		e.t.Fatalf("%s: %s %s %s", path, resp.Status, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"))
	}
	return b
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestCSVCellDefusesFormulas(t *testing.T) {
	for in, want := range map[string]string{"=1+1": "'=1+1", "+254700": "'+254700", "-2": "'-2", "@SUM": "'@SUM", "hello": "hello", "": ""} {
		if got := csvCell(in); got != want {
			t.Errorf("csvCell(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStackedBarsAxis(t *testing.T) {
	tests := []struct {
		sums  []float64
		yMax  float64
		ticks []string
		empty bool
	}{
		{[]float64{0, 2}, 0, []string{"0", "1", "2", "3", "4"}, false},
		{[]float64{7, 13}, 0, []string{"0", "5", "10", "15", "20"}, false},
		{[]float64{0, 0}, 0, nil, true},
		{[]float64{0, 0}, 1, []string{"0%", "25%", "50%", "75%", "100%"}, false},
	}
	for _, tt := range tests {
		format := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
		if tt.yMax == 1 {
			format = func(v float64) string { return strconv.Itoa(int(v*100)) + "%" }
		}
		c := stackedBars("t", []string{"a", "b"}, []series{{"", tt.sums}}, tt.yMax, format)
		var ticks []string
		for _, x := range c.Texts {
			if x.Anchor == "end" {
				ticks = append(ticks, x.Text)
			}
		}
		if c.Empty != tt.empty || !slices.Equal(ticks, tt.ticks) {
			t.Errorf("sums %v: empty %v ticks %v, want %v %v", tt.sums, c.Empty, ticks, tt.empty, tt.ticks)
		}
	}
}

// TestMovedConversation: a Telegram group that became a supergroup shows, on each thread, a link
// to the other; a staff reply from the old thread goes to the supergroup and is logged there.
func TestMovedConversation(t *testing.T) {
	tg := &responder{}
	e := newEnv(t, func(o *Options) { o.Responders[bot.Telegram] = tg })
	ctx := t.Context()
	const from, to = "-4001", "-1004001"
	now := e.clock.now()
	in := store.Record{Time: now, Platform: "telegram", ChatID: from, Direction: store.Inbound, SenderID: "31",
		SenderName: "Amina", MessageID: "7", Text: "/language sw"}
	if _, err := e.st.RecordInbound(ctx, in, &store.Chat{Platform: "telegram", ID: from, Kind: "group", Title: "Mbeya growers"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.MigrateChat(ctx, "telegram", from, to, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	oldID, newID := conversationID("telegram", from), conversationID("telegram", to)
	c := e.client()
	token := e.login(c, "alice", agentPass)
	for _, tt := range []struct{ conv, want string }{
		{oldID, `id="moved-to">Moved to a new chat id: the conversation continues in <a href="/conversations/` + newID + `">` + to},
		{newID, `id="moved-from">Continued from <a href="/conversations/` + oldID + `">` + from},
	} {
		if code, body, _ := e.page(c, "/conversations/"+tt.conv); code != http.StatusOK || !strings.Contains(body, tt.want) {
			t.Errorf("thread %s (%d) lacks %q", tt.conv, code, tt.want)
		}
	}

	resp := e.post(c, "/conversations/"+oldID+"/reply", url.Values{"csrf": {token}, "text": {"Spray in the evening."}})
	if want := "/conversations/" + newID + "?done=reply#latest"; resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
		t.Fatalf("reply: %s to %s, want a redirect to %s", resp.Status, resp.Header.Get("Location"), want)
	}
	sent := tg.sent()
	if len(sent) != 1 || sent[0].Chat.ID != to || sent[0].Chat.Kind != bot.Group {
		t.Fatalf("sent %+v, want one reply to the supergroup", sent)
	}
	for id, n := range map[string]int{from: 1, to: 1} {
		if recs, err := e.st.Messages(ctx, "telegram", id, 0, 10); err != nil || len(recs) != n {
			t.Errorf("chat %s logs %d messages (%v), want %d", id, len(recs), err, n)
		}
	}
}
