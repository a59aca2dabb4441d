package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/color"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
)

// writePhoto writes a 256x256 PNG of one colour (solidPNG) to path.
func writePhoto(t *testing.T, path string, c color.RGBA) {
	t.Helper()
	if err := os.WriteFile(path, solidPNG(t, c), 0o600); err != nil {
		t.Fatal(err)
	}
}

// replies collects a handler's replies.
type replies struct {
	mu  sync.Mutex
	got []bot.Reply
}

func (r *replies) Send(_ context.Context, rep bot.Reply) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, rep)
	return nil
}

// TestDiagnoseAgreesWithTheBot: for each photo, diagnose --json prints the verdict the bot's
// handler answers with (its reply's kind, and the crops its question offers), under the same
// --threshold and --ask-crop-below. diagnose printed the model's top-3 for a photo the bot
// refuses (a tree of life → "tomato__late_blight 95.3 %").
func TestDiagnoseAgreesWithTheBot(t *testing.T) {
	lib, modelPath := testenv.ORTLib(t), testenv.OptionalModel(t, "both")
	t.Setenv("CROPSHIELD_ORT_LIB", lib)
	t.Setenv("CROPSHIELD_MODEL", modelPath)
	dir := t.TempDir()
	// The fixture model takes red for a leaf of a crop it does not know, blue for no leaf.
	var files []string
	for name, c := range map[string]color.RGBA{"green": {20, 160, 40, 255}, "red": {230, 40, 30, 255},
		"blue": {30, 60, 240, 255}, "olive": {120, 130, 40, 255}, "grey": {128, 128, 128, 255}} {
		files = append(files, filepath.Join(dir, name+".png"))
		writePhoto(t, files[len(files)-1], c)
	}
	slices.Sort(files)
	model, err := inference.Load(context.Background(), modelPath, inference.Options{LibraryPath: lib, Device: inference.DeviceCPU, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer model.Close()
	loc, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		threshold, askCropBelow float64 // the flags; the handler gets them as serve gives them
		crop                    string
	}{{0.5, 0.66, ""}, {0.9, 0, ""}, {0.2, 0.66, ""}, {0.5, 0.66, "tomato"}, {0.5, 0.66, "corn"}, {0.5, 0.99, ""}} {
		name := strconv.FormatFloat(tc.threshold, 'f', -1, 64) + "," + strconv.FormatFloat(tc.askCropBelow, 'f', -1, 64) + "," + tc.crop
		t.Run(name, func(t *testing.T) {
			st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "bot.db"), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			askCrop := tc.askCropBelow
			if askCrop <= 0 {
				askCrop = -1
			}
			h, err := bot.NewHandler(bot.Config{Threshold: tc.threshold, ClearCropShare: askCrop}, slog.New(slog.DiscardHandler), st, model, loc, nil)
			if err != nil {
				t.Fatal(err)
			}
			args := []string{"diagnose", "--json", "--no-overlay", "--device", "cpu", "--threshold", strconv.FormatFloat(tc.threshold, 'f', -1, 64),
				"--ask-crop-below", strconv.FormatFloat(tc.askCropBelow, 'f', -1, 64), "--crop", tc.crop}
			var stdout, stderr bytes.Buffer
			if code := run(append(args, files...), &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			dec := json.NewDecoder(&stdout)
			for i, f := range files {
				var got diagnoseResult
				if err := dec.Decode(&got); err != nil || got.File != f {
					t.Fatalf("file %d: %+v %v", i, got, err)
				}
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				out := &replies{}
				m := bot.Message{ID: "m1", Chat: bot.ChatRef{Platform: bot.WebChat, ID: "chat-" + strconv.Itoa(i), Kind: bot.Private},
					Sender: bot.Sender{ID: "u" + strconv.Itoa(i), LangHint: "en"}, Text: tc.crop, Time: time.Now(),
					Photo: &bot.Photo{Fetch: func(context.Context) ([]byte, error) { return data, nil }}}
				if err := h.Handle(context.Background(), m, out); err != nil {
					t.Fatal(err)
				}
				if len(out.got) != 1 {
					t.Fatalf("%s: the bot sent %d replies: %v", f, len(out.got), out.got)
				}
				reply := out.got[0]
				if got.Verdict != reply.Kind {
					t.Errorf("%s: diagnose says %q, the bot answers %q: %s", filepath.Base(f), got.Verdict, reply.Kind, reply.FullText())
				}
				var offered, printed []string
				for _, c := range reply.Choices {
					if crop := strings.Split(c.Data, ":")[1]; crop != locales.OtherCrop {
						offered = append(offered, crop)
					}
				}
				for _, c := range got.Crops {
					printed = append(printed, c.Crop)
				}
				if got.Verdict == bot.KindCropQuestion && !slices.Equal(offered, printed) {
					t.Errorf("%s: diagnose offers %q, the bot %q", filepath.Base(f), printed, offered)
				}
				if (got.Verdict == bot.KindDiagnosis || got.Verdict == bot.KindUnsure) && (len(got.Top) == 0 || !strings.Contains(reply.Caption, got.Top[0].Name)) {
					t.Errorf("%s: diagnose's top-1 %+v is not in the bot's caption %q", filepath.Base(f), got.Top, reply.Caption)
				}
			}
			if err := h.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDiagnoseText: the verdict in words, names in --lang (ids with --ids), and the refusals
// named as such without a disease.
func TestDiagnoseText(t *testing.T) {
	t.Setenv("CROPSHIELD_ORT_LIB", testenv.ORTLib(t))
	t.Setenv("CROPSHIELD_MODEL", testenv.OptionalModel(t, "both"))
	dir := t.TempDir()
	green, red, blue := filepath.Join(dir, "green.png"), filepath.Join(dir, "red.png"), filepath.Join(dir, "blue.png")
	writePhoto(t, green, color.RGBA{20, 160, 40, 255})
	writePhoto(t, red, color.RGBA{230, 40, 30, 255})
	writePhoto(t, blue, color.RGBA{30, 60, 240, 255})
	lines := func(args ...string) []string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := run(append([]string{"diagnose", "--no-overlay", "--device", "cpu", "--threshold", "0.01"}, args...), &stdout, &stderr); code != 0 {
			t.Fatalf("%q: exit %d: %s", args, code, stderr.String())
		}
		return strings.Split(strings.TrimSpace(stdout.String()), "\n")
	}
	en := lines("--ask-crop-below", "0", green, red, blue)
	sw := lines("--lang", "sw", green)
	ids := lines("--ids", green)
	for _, c := range []struct {
		line, want string
		not        []string
	}{
		{en[0], green + ": diagnosis: ", []string{"__"}},
		{en[1], red + ": a crop the model does not know (unknown-crop score ", []string{"__", "·"}},
		{en[2], blue + ": not a leaf (not-leaf score ", []string{"__", "·"}},
		{sw[0], green + ": diagnosis: ", []string{"__"}},
		{ids[0], green + ": diagnosis: ", []string{"·"}},
	} {
		if !strings.HasPrefix(c.line, c.want) {
			t.Errorf("%q does not start with %q", c.line, c.want)
		}
		for _, n := range c.not {
			if strings.Contains(c.line, n) {
				t.Errorf("%q has %q", c.line, n)
			}
		}
	}
	if en[0] == sw[0] {
		t.Errorf("--lang sw printed the English names: %s", sw[0])
	}
	if !regexp.MustCompile(`diagnosis: [a-z]+__[a-z_]+ \d+\.\d%`).MatchString(ids[0]) {
		t.Errorf("--ids: %s", ids[0])
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"diagnose", "--lang", "xx", green}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "--lang") {
		t.Errorf("--lang xx: exit %d: %s", code, stderr.String())
	}
	if code := run([]string{"diagnose", "--crop", "cassava", "--device", "cpu", green}, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "--crop") {
		t.Errorf("--crop cassava: exit %d: %s", code, stderr.String())
	}
}
