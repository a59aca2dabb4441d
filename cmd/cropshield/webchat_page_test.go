package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cropshield/cropshield/internal/browsertest"
	"github.com/cropshield/cropshield/locales"
)

// TestWebChatPageInBrowser drives the web chat page on a 390 px phone screen in headless Chromium
// against the real `serve`: the page's own texts and its lang attribute follow /language in every
// language and the placeholder fits; the page and the dashboard have an icon; after serve
// restarts, the returning visitor (same cookie) sees the conversation again, overlay included.
func TestWebChatPageInBrowser(t *testing.T) {
	browsertest.Exe(t)
	loc, err := locales.Load()
	must(t, "load locales", err)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	db := filepath.Join(t.TempDir(), "data", "cropshield.db")
	tab := browsertest.Start(t, ctx, 1280, 900)
	must(t, "phone screen", chromedp.Do(tab, chromedp.EmulateViewport(390, 844)))
	leaf := filepath.Join(t.TempDir(), "leaf.jpg")
	must(t, "write the leaf", os.WriteFile(leaf, leafPhoto(t, 1), 0o600))
	commands := 0
	say := func(t *testing.T, text string) {
		t.Helper()
		commands++
		must(t, "send "+text, chromedp.Do(tab, chromedp.SendKeys(chromedp.ID("text"), text), chromedp.Click(chromedp.ID("send"))))
		browsertest.Do(t, tab, "reply to "+text, browsertest.Poll(`document.querySelectorAll(".msg.bot.command").length >= `+strconv.Itoa(commands)))
	}

	t.Run("first run", func(t *testing.T) {
		chatURL, reviewURL := startServeAsking(t, db, 0)
		for _, u := range []string{chatURL, reviewURL} {
			resp, err := http.Get(u + "/favicon.ico")
			must(t, "favicon", err)
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "image/") {
				t.Errorf("%s/favicon.ico: %s %q", u, resp.Status, resp.Header.Get("Content-Type"))
			}
		}
		must(t, "open the web chat", chromedp.Do(tab, chromedp.Navigate(chatURL+"/"), chromedp.WaitVisible(chromedp.ID("composer"))))
		if icon := browsertest.Do(t, tab, "page icon", chromedp.Evaluate[bool](`(() => {
			const l = document.querySelector("link[rel=icon]");
			return l ? fetch(l.href).then(r => r.ok) : false; })()`, chromedp.EvalAwaitPromise)); !icon {
			t.Error("the page's icon does not load")
		}
		// English first (the browser's language), then every other language, Swahili last: at most
		// ten messages, the rate limit's burst, with the photo.
		langs := loc.Languages()
		slices.SortStableFunc(langs, func(a, b locales.Language) int {
			rank := func(c string) int { return map[string]int{"en": -1, "sw": 1}[c] }
			return rank(a.Code) - rank(b.Code)
		})
		for i, l := range langs {
			if i > 0 {
				say(t, "/language "+l.Code)
			}
			browsertest.Do(t, tab, "page in "+l.Code, browsertest.Poll(`document.documentElement.lang === "`+l.Code+`"`))
			got := browsertest.Do(t, tab, "page texts", chromedp.Evaluate[[]string](`[document.getElementById("tagline").textContent,
				document.getElementById("text").placeholder, document.getElementById("send").textContent,
				document.getElementById("working").textContent]`))
			want := []string{loc.T(l.Code, "web.tagline"), loc.T(l.Code, "web.placeholder"), loc.T(l.Code, "web.send"), loc.T(l.Code, "web.working")}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("%s: page text %d is %q, want %q", l.Code, i, got[i], want[i])
				}
			}
			// The placeholder, in the input's font, fits the input's content box.
			fit := browsertest.Do(t, tab, "placeholder width", chromedp.Evaluate[[]float64](`(() => {
				const i = document.getElementById("text"), cs = getComputedStyle(i);
				const c = document.createElement("canvas").getContext("2d");
				c.font = cs.fontStyle + " " + cs.fontWeight + " " + cs.fontSize + " " + cs.fontFamily;
				return [c.measureText(i.placeholder).width, i.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight)];
			})()`))
			if fit[0] > fit[1] {
				t.Errorf("%s: the placeholder %q is %.0f px wide, the field %.0f px: it is cut at 390 px", l.Code, want[1], fit[0], fit[1])
			}
		}
		browsertest.Screenshot(t, tab, "webchat-390px-sw.png")
		must(t, "upload the leaf", chromedp.Do(tab, chromedp.SetUploadFiles(chromedp.ID("photo"), []string{leaf})))
		browsertest.Do(t, tab, "the diagnosis", browsertest.Poll(`document.querySelectorAll(".msg.bot.diagnosis img").length === 1`))
	})

	t.Run("after a restart", func(t *testing.T) {
		chatURL, _ := startServeAsking(t, db, 0)
		must(t, "open the web chat again", chromedp.Do(tab, chromedp.Navigate(chatURL+"/"), chromedp.WaitVisible(chromedp.ID("composer"))))
		browsertest.Do(t, tab, "the conversation again", browsertest.Poll(`(() => { const d = document.querySelectorAll(".msg.bot.diagnosis img");
			return d.length === 1 && d[0].complete && d[0].naturalWidth > 0; })()`))
		n := browsertest.Do(t, tab, "commands answered", chromedp.Evaluate[int](`document.querySelectorAll(".msg.bot.command").length`))
		if n != commands {
			t.Errorf("the page shows %d command answers after the restart, want %d", n, commands)
		}
		if lang := browsertest.Do(t, tab, "lang", chromedp.Evaluate[string](`document.documentElement.lang`)); lang != "sw" {
			t.Errorf("after the restart the page is in %q, want sw", lang)
		}
		// The farmer's photo is not kept in the page: it is named, in the chat's language.
		if you := browsertest.Do(t, tab, "the farmer's photo", chromedp.Evaluate[string](`document.querySelector(".msg.you.photo").firstChild.textContent`)); you != "["+loc.T("sw", "web.photo_alt")+"]" {
			t.Errorf("the farmer's photo after the restart shows as %q", you)
		}
		browsertest.Screenshot(t, tab, "webchat-after-restart.png")

		// No made-up name: /start greets without one; the page asks once (optional) and the bot
		// then greets with the name given.
		if asked := browsertest.Do(t, tab, "name asked", chromedp.Evaluate[bool](`!document.getElementById("name-ask").hidden`)); !asked {
			t.Error("the page does not offer to take the visitor's name")
		}
		last := func() string {
			return browsertest.Do(t, tab, "last answer", chromedp.Evaluate[string](`[...document.querySelectorAll(".msg.bot.command")].pop().textContent`))
		}
		say(t, "/start")
		if got := last(); strings.Contains(got, "Web visitor") || !strings.HasPrefix(got, "Habari 👋!") {
			t.Errorf("/start without a name: %q", got)
		}
		must(t, "give a name", chromedp.Do(tab, chromedp.SendKeys(chromedp.ID("name-text"), "Amina"), chromedp.Click(chromedp.ID("name-save"))))
		browsertest.Do(t, tab, "the name kept", browsertest.Poll(`document.getElementById("name-ask").hidden`))
		say(t, "/start")
		if got := last(); !strings.HasPrefix(got, "Habari Amina!") {
			t.Errorf("/start after the name was given: %q", got)
		}
		must(t, "open the page again", chromedp.Do(tab, chromedp.Navigate(chatURL+"/"), chromedp.WaitVisible(chromedp.ID("composer"))))
		if asked := browsertest.Do(t, tab, "name asked again", chromedp.Evaluate[bool](`"askName" in document.getElementById("chat").dataset`)); asked {
			t.Error("the page asks for the name again after it was given")
		}
	})
}
