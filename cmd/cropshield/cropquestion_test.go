package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/cropshield/cropshield/internal/browsertest"
)

// TestCropQuestionInBrowser: in the web chat (headless Chromium), a leaf the model is unsure
// between crops of gets "which crop?" with buttons; tapping "Corn (maize)" answers the same photo
// with a maize top-3 and its overlay; the dashboard's thread shows the stated crop.
func TestCropQuestionInBrowser(t *testing.T) {
	b := startBrowserWorkflow(t, 0.66) // serve's default --ask-crop-below: the contract model is unsure between crops
	chatTab, reviewTab, chatURL, reviewURL, password := b.chatTab, b.reviewTab, b.chatURL, b.reviewURL, staffPassword

	dir := t.TempDir()
	leaf := filepath.Join(dir, "leaf.jpg")
	must(t, "write the leaf", os.WriteFile(leaf, leafPhoto(t, 1), 0o600))
	must(t, "open the web chat", chromedp.Do(chatTab, chromedp.Navigate(chatURL+"/"), chromedp.WaitVisible(chromedp.ID("composer"))))
	must(t, "upload the leaf", chromedp.Do(chatTab, chromedp.SetUploadFiles(chromedp.ID("photo"), []string{leaf})))
	browsertest.Do(t, chatTab, "the crop question", browsertest.Poll(`document.querySelectorAll(".msg.bot.crop_question .choices button").length >= 2`))
	labels := browsertest.Do(t, chatTab, "the buttons", chromedp.Evaluate[[]string](`[...document.querySelectorAll(".msg.bot.crop_question .choices button")].map(b => b.textContent)`))
	const maize = "Corn (maize)"
	found := false
	for _, l := range labels {
		found = found || l == maize
	}
	if !found {
		t.Fatalf("buttons %q, want %q among them", labels, maize)
	}
	browsertest.Do(t, chatTab, "tap maize", chromedp.Evaluate[bool](`(() => { const b = [...document.querySelectorAll(".msg.bot.crop_question .choices button")].find(b => b.textContent === "`+maize+`"); b.click(); return true; })()`))
	browsertest.Do(t, chatTab, "the maize diagnosis", browsertest.Poll(`(() => { const d = [...document.querySelectorAll(".msg.bot.diagnosis")];
		return d.length === 1 && d[0].textContent.startsWith("Crop: `+maize+` (as you told me)") && d[0].querySelector("img") !== null; })()`))
	text := browsertest.Do(t, chatTab, "the diagnosis text", chromedp.Text(chromedp.CSS(".msg.bot.diagnosis")))
	for _, other := range []string{"Tomato:", "Apple:", "Grape:", "Potato:", "Orange (citrus):", "Strawberry:", "Blueberry:", "Raspberry:", "Bean:"} {
		if strings.Contains(text, other) {
			t.Errorf("the maize top-3 names %q:\n%s", other, text)
		}
	}
	if n := browsertest.Do(t, chatTab, "buttons left", chromedp.Evaluate[int](`document.querySelectorAll(".msg.bot.crop_question .choices button:not(:disabled)").length`)); n != 0 {
		t.Errorf("%d buttons still enabled after the tap", n)
	}
	if you := browsertest.Do(t, chatTab, "the tap as said", chromedp.Evaluate[bool](`[...document.querySelectorAll(".msg.you.choice")].some(m => m.textContent.startsWith("`+maize+`"))`)); !you {
		t.Error("the page does not show the tap as the farmer's message")
	}
	browsertest.Screenshot(t, chatTab, "webchat-crop-question.png")

	// The agent sees the stated crop in the thread.
	must(t, "open the dashboard", chromedp.Do(reviewTab, chromedp.Navigate(reviewURL+"/"), chromedp.WaitVisible(chromedp.ID("password"))))
	must(t, "fill the login form", chromedp.Do(reviewTab,
		chromedp.SendKeys(chromedp.ID("name"), "alice"), chromedp.SendKeys(chromedp.ID("password"), password)))
	if _, err := chromedp.RunResponse(reviewTab, chromedp.Click(chromedp.ID("login"))); err != nil {
		t.Fatalf("log in: %v", err)
	}
	if _, err := chromedp.RunResponse(reviewTab, chromedp.Click(chromedp.CSS("a.conv"))); err != nil {
		t.Fatalf("open the conversation: %v", err)
	}
	crops := browsertest.Do(t, reviewTab, "stated crops", chromedp.Evaluate[[]string](`[...document.querySelectorAll("li.item span.crop")].map(s => s.textContent)`))
	if len(crops) != 2 || crops[0] != "crop stated: "+maize || crops[1] != "crop stated: "+maize {
		t.Errorf("the thread shows the stated crop as %q, want it on the farmer's answer and on the bot's diagnosis", crops)
	}
	browsertest.Screenshot(t, reviewTab, "dashboard-thread-crop.png")
}
