package dashboard

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cropshield/cropshield/internal/browsertest"
	"github.com/cropshield/cropshield/store"
)

// browse starts headless Chromium with a window of width x height and logs in as name through
// the login form; everything stops at the test's end, or after 2 minutes (a safety net, not a
// measurement).
func (e *env) browse(t *testing.T, width, height int, name, pass string) context.Context {
	t.Helper()
	browsertest.Exe(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	tab := browsertest.Start(t, ctx, width, height)
	browsertest.Steps(t, tab, "open the login page", chromedp.Navigate(e.web.URL+"/login"), chromedp.WaitVisible(chromedp.ID("password")))
	browsertest.Steps(t, tab, "fill the login form", chromedp.SendKeys(chromedp.ID("name"), name), chromedp.SendKeys(chromedp.ID("password"), pass))
	browsertest.Load(t, tab, "log in", chromedp.Click(chromedp.ID("login")))
	if loc := browsertest.Do(t, tab, "location", chromedp.Location()); !strings.HasPrefix(loc, e.web.URL+"/conversations") {
		t.Fatalf("after logging in: %s", loc)
	}
	return tab
}

// open navigates to a dashboard path and waits for the page.
func (e *env) open(t *testing.T, tab context.Context, path string) {
	t.Helper()
	browsertest.Load(t, tab, "open "+path, chromedp.Navigate(e.web.URL+path))
}

func evalJS[T any](t *testing.T, tab context.Context, what, expr string) T {
	t.Helper()
	return browsertest.Do(t, tab, what, chromedp.Evaluate[T](expr))
}

// appendMessage logs a message in the seeded conversation.
func (e *env) appendMessage(r store.Record) {
	e.t.Helper()
	r.Platform, r.ChatID = "webchat", "web-1"
	if _, err := e.st.AppendMessage(context.Background(), r); err != nil {
		e.t.Fatal(err)
	}
}

// photoTurn stores the analysis of photo (its top classes, and overlay if not nil) and logs, in the
// seeded conversation at the clock's time, the farmer's message id with the photo and text, and a
// second later the bot's diagnosis answer. It returns the photo's hash.
func (e *env) photoTurn(photo, overlay []byte, top []store.Candidate, id, text, answer string) string {
	e.t.Helper()
	sum := sha256.Sum256(photo)
	hash := hex.EncodeToString(sum[:])
	a := store.Analysis{PhotoHash: hash, ModelVersion: "v1", CreatedAt: e.clock.now(), Overlay: overlay, Top: top}
	if err := e.st.PutAnalysis(e.t.Context(), a, photo, "image/jpeg"); err != nil {
		e.t.Fatal(err)
	}
	e.appendMessage(store.Record{Time: e.clock.now(), Direction: store.Inbound, SenderID: "web-1", MessageID: id, PhotoHash: hash, Lang: "en", Text: text})
	e.appendMessage(store.Record{Time: e.clock.now().Add(time.Second), Direction: store.Outbound, Kind: "diagnosis", PhotoHash: hash, Lang: "en", Text: answer})
	return hash
}

// TestListLabelsLastMessageBySender (issue 16, item 7): after a staff reply, the bot's next
// message is labelled "bot:" in the list's "Last message" column, not "staff:"; a staff reply
// that is the last message is labelled "staff:".
func TestListLabelsLastMessageBySender(t *testing.T) {
	e := newEnv(t, nil)
	tab := e.browse(t, 1280, 900, "alice", agentPass)
	e.open(t, tab, "/conversations/"+e.convID)
	browsertest.Steps(t, tab, "type a reply", chromedp.SendKeys(chromedp.ID("reply-text"), "Please send a closer photo"))
	browsertest.Load(t, tab, "send the reply", chromedp.Click(chromedp.ID("reply-send")))
	lastCell := func() string {
		e.open(t, tab, "/conversations")
		return browsertest.Do(t, tab, "last message", chromedp.Text(chromedp.CSS("table.conversations tbody tr td.last")))
	}
	if got := lastCell(); !strings.HasPrefix(got, "staff:") || !strings.Contains(got, "closer photo") {
		t.Fatalf("after the staff reply, last message %q", got)
	}
	e.clock.advance(time.Minute)
	e.appendMessage(store.Record{Time: e.clock.now(), Direction: store.Inbound, SenderID: "web-1", MessageID: "m2", Text: "/help"})
	e.appendMessage(store.Record{Time: e.clock.now().Add(time.Second), Direction: store.Outbound, Kind: "command", Text: "Send me a photo of one leaf."})
	if got := lastCell(); !strings.HasPrefix(got, "bot:") {
		t.Fatalf("after the bot's answer, last message %q, want it labelled bot:", got)
	}
}

// TestReplyReturnsToTheNewMessage (issue 16, item 9): after "Send reply" in a long thread the
// page shows the new message and the reply box, not the top of the thread.
func TestReplyReturnsToTheNewMessage(t *testing.T) {
	e := newEnv(t, nil)
	for i := range 30 {
		e.clock.advance(time.Minute)
		e.appendMessage(store.Record{Time: e.clock.now(), Direction: store.Inbound, SenderID: "web-1", MessageID: fmt.Sprintf("t%d", i),
			Text: "What should I spray on my tomatoes this week?"})
		e.appendMessage(store.Record{Time: e.clock.now().Add(time.Second), Direction: store.Outbound, Kind: "command",
			Text: "Send me a photo of one leaf, in daylight, filling the picture."})
	}
	e.clock.advance(time.Minute)
	tab := e.browse(t, 1280, 800, "alice", agentPass)
	e.open(t, tab, "/conversations/"+e.convID)
	const reply = "Our agronomist will call you tomorrow morning."
	browsertest.Steps(t, tab, "type a reply", chromedp.SendKeys(chromedp.ID("reply-text"), reply))
	browsertest.Load(t, tab, "send the reply", chromedp.Click(chromedp.ID("reply-send")))
	browsertest.Do(t, tab, "page loaded", browsertest.Poll(`document.readyState === "complete"`))
	got := evalJS[map[string]any](t, tab, "where the page is", `(() => {
		const items = document.querySelectorAll("ol.thread li.item");
		const last = items[items.length - 1], r = last.getBoundingClientRect();
		const box = document.querySelector("#reply-text").getBoundingClientRect();
		return {scrollY: window.scrollY, text: last.textContent, lastTop: r.top, lastBottom: r.bottom,
			boxTop: box.top, boxBottom: box.bottom, height: window.innerHeight};
	})()`)
	t.Logf("%v", got)
	inView := func(top, bottom string) bool {
		return got[top].(float64) >= 0 && got[bottom].(float64) <= got["height"].(float64)
	}
	if !strings.Contains(got["text"].(string), reply) {
		t.Fatalf("the thread's last message is %q, want the reply", got["text"])
	}
	if got["scrollY"].(float64) == 0 || !inView("lastTop", "lastBottom") || !inView("boxTop", "boxBottom") {
		t.Fatalf("after sending, the new message or the reply box is out of view: %v", got)
	}
}

// TestPhotoPageShowsTheCurrentVerdict (issue 16, item 10): after a correction the photo page
// shows the verdict and who set it, and no longer offers to confirm the model's old top-1.
func TestPhotoPageShowsTheCurrentVerdict(t *testing.T) {
	e := newEnv(t, nil)
	tab := e.browse(t, 1280, 900, "alice", agentPass)
	e.open(t, tab, "/photos/"+e.hash+"?c="+e.convID)
	if n := evalJS[int](t, tab, "confirm buttons", `document.querySelectorAll("#confirm").length`); n != 1 {
		t.Fatalf("before any verdict: %d confirm buttons, want 1", n)
	}
	browsertest.Steps(t, tab, "choose the class", chromedp.SetValue(chromedp.ID("class"), "tomato__early_blight"))
	browsertest.Load(t, tab, "save the correction", chromedp.Click(chromedp.ID("correct")))
	section := browsertest.Do(t, tab, "verdict section", chromedp.Text(chromedp.CSS("section.correct")))
	if strings.Contains(section, "Confirm") || evalJS[int](t, tab, "confirm buttons", `document.querySelectorAll("#confirm").length`) != 0 {
		t.Errorf("after the correction the page still offers to confirm: %q", section)
	}
	verdict := evalJS[string](t, tab, "current verdict", `document.querySelector("#current-verdict")?.textContent ?? ""`)
	if !strings.Contains(verdict, "Tomato: Early blight") || !strings.Contains(verdict, "corrected by alice") {
		t.Errorf("current verdict %q", verdict)
	}
}

// TestPercentagesAndNamesAsTheChat (issue 16, item 11): the dashboard writes a model's
// probabilities as the chat does ("<1%", ">99%"), the statistics chart names languages as its
// table does, and the export page counts the confirmed and the corrected photos.
func TestPercentagesAndNamesAsTheChat(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	e.clock.advance(time.Minute)
	hash := e.photoTurn([]byte("\xff\xd8\xff\xe0 another leaf"), nil, []store.Candidate{
		{Class: "tomato__early_blight", Prob: 0.996}, {Class: "tomato__late_blight", Prob: 0.003}, {Class: "tomato__leaf_mold", Prob: 0.001}},
		"m2", "", "Tomato: Early blight (>99%)")
	if err := e.st.PutCorrection(ctx, store.Correction{PhotoHash: hash, Class: "tomato__early_blight", Confirmed: true,
		ModelClass: "tomato__early_blight", By: "alice", At: e.clock.now()}, "", ""); err != nil {
		t.Fatal(err)
	}

	tab := e.browse(t, 1280, 900, "alice", agentPass)
	e.open(t, tab, "/conversations/"+e.convID)
	probs := evalJS[[]string](t, tab, "top-3 probabilities", `[...document.querySelectorAll("ol.top3 .prob")].map(p => p.textContent)`)
	if want := []string{"41%", "30%", "10%", ">99%", "<1%", "<1%"}; strings.Join(probs, " ") != strings.Join(want, " ") {
		t.Errorf("top-3 probabilities %q, want %q", probs, want)
	}
	e.open(t, tab, "/stats")
	labels := evalJS[[]string](t, tab, "chart labels", `[...document.querySelectorAll("figure.chart")].filter(f => f.textContent.includes("by language")).flatMap(f => [...f.querySelectorAll("text.label")].map(l => l.textContent))`)
	if strings.Join(labels, " ") != "English" {
		t.Errorf("language chart labels %q, want the table's English", labels)
	}
	e.open(t, tab, "/export")
	if got := evalJS[string](t, tab, "export wording", `document.querySelector("#verdicts")?.textContent ?? ""`); !strings.HasPrefix(got, "1 photo has a staff verdict: 1 confirmed, 0 corrected.") {
		t.Errorf("export page: %q", got)
	}
}

func TestShare100(t *testing.T) {
	for v, want := range map[float64]string{0: "0%", 0.004: "<1%", 0.01: "1%", 0.5: "50%", 0.994: ">99%", 1: "100%"} {
		if got := share100(v); got != want {
			t.Errorf("share100(%v) = %q, want %q", v, got, want)
		}
	}
}

// jpegOf encodes a small solid image, a photo Chromium can show.
func jpegOf(t *testing.T, c color.RGBA) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	draw.Draw(img, img.Bounds(), &image.Uniform{c}, image.Point{}, draw.Src)
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// diagnosisText is a bot answer as the handler writes it: the top-3, then symptoms and advice.
const diagnosisText = `What I see on this leaf:
1. Tomato: Early blight — 87%
2. Tomato: Late blight — 9%
3. Tomato: Leaf mould — 2%

The coloured picture shows where I looked.

Symptoms:
• Brown spots with rings like a target
• Yellowing around the spots
Advice:
• Remove the spotted leaves and burn them
• Water the soil, not the leaves
• Rotate crops next season
Urgency: act this week
Call an expert if it spreads to the fruit.`

// TestLongThreadFoldsAdvice (issue 16, item 8): in a thread of 32 messages every diagnosis's
// symptoms and advice are folded under its first line (<details>), while each photo and its
// top-3 stay in view; a click unfolds one.
func TestLongThreadFoldsAdvice(t *testing.T) {
	e := newEnv(t, nil)
	for i := range 15 {
		e.clock.advance(time.Minute)
		e.photoTurn(jpegOf(t, color.RGBA{uint8(40 + i*10), 120, 40, 255}), jpegOf(t, color.RGBA{200, 40, 40, 255}),
			[]store.Candidate{{Class: "tomato__early_blight", Prob: 0.87}, {Class: "tomato__late_blight", Prob: 0.09}, {Class: "tomato__leaf_mold", Prob: 0.02}},
			fmt.Sprintf("p%d", i), "", diagnosisText)
	}
	tab := e.browse(t, 1280, 900, "alice", agentPass)
	e.open(t, tab, "/conversations/"+e.convID)
	browsertest.Do(t, tab, "photos loaded", browsertest.Poll(`[...document.querySelectorAll("img")].every(i => i.complete)`))
	got := evalJS[map[string]any](t, tab, "the thread", `(() => {
		const answers = [...document.querySelectorAll("li.item.bot")].filter(li => li.textContent.includes("What I see"));
		const folded = answers.filter(li => { const d = li.querySelector("details.answer"); return d && !d.open; });
		const shown = el => el.getClientRects().length > 0 && el.offsetHeight > 0;
		const photos = [...document.querySelectorAll("li.item.farmer .photo")].filter(p => !p.innerHTML.includes("`+e.hash+`"));
		return {
			messages: document.querySelectorAll("ol.thread li.item").length,
			answers: answers.length, folded: folded.length,
			adviceShown: document.body.innerText.includes("Remove the spotted leaves"),
			headlinesShown: answers.filter(li => li.innerText.includes("What I see on this leaf")).length,
			photos: photos.length,
			photosShown: photos.filter(p => [...p.querySelectorAll("img.original, img.overlay")].every(i => shown(i) && i.naturalWidth > 0)).length,
			top3Shown: photos.filter(p => { const o = p.querySelector("ol.top3"); return o && shown(o); }).length,
			height: document.documentElement.scrollHeight,
		};
	})()`)
	t.Logf("%v", got)
	browsertest.Screenshot(t, tab, "long-thread.png")
	if got["messages"].(float64) != 32 || got["answers"].(float64) != 15 || got["photos"].(float64) != 15 {
		t.Fatalf("thread %v: want 32 messages, 15 diagnoses, 15 photos besides the seeded one", got)
	}
	if got["folded"].(float64) != 15 || got["adviceShown"].(bool) || got["headlinesShown"].(float64) != 15 {
		t.Errorf("advice not folded under each diagnosis's first line: %v", got)
	}
	if got["photosShown"].(float64) != 15 || got["top3Shown"].(float64) != 15 {
		t.Errorf("photos or top-3 out of sight: %v", got)
	}
	browsertest.Steps(t, tab, "unfold the last answer", chromedp.Click(chromedp.CSS("li#latest details.answer summary")))
	if !evalJS[bool](t, tab, "unfolded advice", `document.querySelector("li#latest").innerText.includes("Remove the spotted leaves")`) {
		t.Error("a click on the answer's first line does not show its advice")
	}
}

// TestUsableOnAPhone (issue 16, item 12): at 390 CSS pixels (a phone) no dashboard page is
// wider than the screen: the list, a thread with photos and a long answer, a photo, the
// statistics and the export page.
func TestUsableOnAPhone(t *testing.T) {
	e := newEnv(t, nil)
	e.clock.advance(time.Minute)
	hash := e.photoTurn(jpegOf(t, color.RGBA{60, 140, 40, 255}), jpegOf(t, color.RGBA{200, 40, 40, 255}),
		[]store.Candidate{{Class: "corn__cercospora_leaf_spot gray_leaf_spot", Prob: 0.87}, {Class: "tomato__late_blight", Prob: 0.09}, {Class: "tomato__leaf_mold", Prob: 0.02}},
		"p1", "https://example.org/a-very-long-link-that-a-farmer-pasted-without-any-spaces-in-it-at-all", diagnosisText)

	tab := e.browse(t, 1280, 900, "alice", agentPass)
	browsertest.Steps(t, tab, "phone screen", chromedp.EmulateViewport(390, 844, chromedp.EmulatePortrait, chromedp.EmulateMobile, chromedp.EmulateTouch))
	for _, path := range []string{"/conversations", "/conversations/" + e.convID, "/photos/" + hash + "?c=" + e.convID, "/stats", "/export"} {
		e.open(t, tab, path)
		browsertest.Do(t, tab, "page loaded", browsertest.Poll(`document.readyState === "complete"`))
		got := evalJS[map[string]any](t, tab, "widths", `(() => {
			const vw = document.documentElement.clientWidth;
			const wide = [...document.querySelectorAll("body *")].filter(el => el.getBoundingClientRect().right > vw + 0.5)
				.map(el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.className && typeof el.className === "string" ? "." + el.className.split(" ").join(".") : "") + " " + Math.round(el.getBoundingClientRect().right));
			return {scrollWidth: document.documentElement.scrollWidth, clientWidth: vw, innerWidth: window.innerWidth, wide: wide.slice(0, 8)};
		})()`)
		if sw := got["scrollWidth"].(float64); sw > 390 || got["clientWidth"].(float64) > 390 {
			t.Errorf("%s at 390 px: page %v px wide (%v)", path, sw, got)
		}
		name := strings.NewReplacer("/", "_", "?", "_", "=", "_").Replace(strings.TrimPrefix(path, "/"))
		browsertest.Screenshot(t, tab, "phone-"+name[:min(len(name), 40)]+".png")
	}
}
