package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/internal/testenv"
)

func TestDiagnose(t *testing.T) {
	dir := t.TempDir()
	leaf1, leaf2, junk := filepath.Join(dir, "leaf1.jpg"), filepath.Join(dir, "leaf2.jpg"), filepath.Join(dir, "notes.jpg")
	for p, data := range map[string][]byte{leaf1: testLeaf(t), leaf2: testLeaf(t), junk: []byte("not a photo")} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("CROPSHIELD_ORT_LIB", testenv.ORTLib(t))
	t.Setenv("CROPSHIELD_MODEL", testenv.ContractModel(t))
	var stdout, stderr bytes.Buffer
	// A diagnosis (not a crop question nor "not sure") with the top-3 by class id.
	code := run([]string{"diagnose", "--device", "cpu", "--ids", "--threshold", "0.01", "--ask-crop-below", "0", leaf1, junk, leaf2}, &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit code %d with one bad file, want 1", code)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], leaf1+":") || !strings.HasPrefix(lines[1], leaf2+":") {
		t.Fatalf("stdout:\n%s", stdout.String())
	}
	if strings.Count(lines[0], "%") != 3 || !strings.Contains(lines[0], "__") {
		t.Errorf("line lacks the top-3 with percentages: %s", lines[0])
	}
	if !strings.Contains(stderr.String(), junk+": not an image") || !strings.Contains(stderr.String(), "1 of 3 files could not be diagnosed") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
	for _, p := range []string{leaf1, leaf2} {
		f, err := os.Open(p + ".overlay.jpg")
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := jpeg.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width != 1024 || cfg.Height != 768 {
			t.Errorf("%s.overlay.jpg: %+v %v", p, cfg, err)
		}
	}
	if _, err := os.Stat(junk + ".overlay.jpg"); !os.IsNotExist(err) {
		t.Errorf("an overlay was written for the bad file: %v", err)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage: cropshield"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"diagnose"}, 2, "usage: cropshield diagnose"},
		{[]string{"serve", "--device", "tpu"}, 2, "unknown device"},
		{[]string{"serve", "--log-format", "xml"}, 2, "--log-format"},
		{[]string{"serve", "extra"}, 2, "serve takes no arguments"},
		{[]string{"serve", "--model", "/nonexistent/model.onnx", "--db", "DB"}, 1, "load model"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			for i, a := range tc.args {
				if a == "DB" {
					tc.args[i] = filepath.Join(t.TempDir(), "x.db")
				}
			}
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, &stdout, &stderr); code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, stderr.String())
			}
		})
	}
}

// TestFlagsFromEnvironment: CROPSHIELD_* sets a default, the command line wins, and a bad value
// in the environment is an error naming the variable.
func TestFlagsFromEnvironment(t *testing.T) {
	parse := func(args ...string) (modelConfig, error) {
		var c modelConfig
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		c.register(fs)
		return c, parseFlags(fs, args, &bytes.Buffer{})
	}
	t.Setenv("CROPSHIELD_DEVICE", "cuda")
	t.Setenv("CROPSHIELD_CUDA_DEVICE", "1")
	c, err := parse()
	if err != nil || c.device != "cuda" || c.cudaDev != 1 {
		t.Fatalf("from env: %+v %v", c, err)
	}
	if c, err = parse("--device", "cpu"); err != nil || c.device != "cpu" {
		t.Fatalf("flag over env: %+v %v", c, err)
	}
	t.Setenv("CROPSHIELD_THREADS", "many")
	if _, err := parse(); err == nil || !strings.Contains(err.Error(), "CROPSHIELD_THREADS") {
		t.Fatalf("bad env value: %v", err)
	}
}

func TestVersion(t *testing.T) {
	var stdout bytes.Buffer
	if code := run([]string{"version"}, &stdout, &bytes.Buffer{}); code != 0 || !strings.HasPrefix(stdout.String(), "cropshield ") {
		t.Fatalf("version: %d %q", code, stdout.String())
	}
}

// TestEvalCommand runs `cropshield eval --json --plot` on a tiny folder through the real model and
// checks the report against what the model itself says about each photo.
func TestEvalCommand(t *testing.T) {
	t.Setenv("CROPSHIELD_ORT_LIB", testenv.ORTLib(t))
	t.Setenv("CROPSHIELD_MODEL", testenv.ContractModel(t))
	dir := t.TempDir()
	leafPNG, err := os.ReadFile(filepath.Join(filepath.Dir(testenv.ContractModel(t)), "testdata", "leafish-256.png"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"tomato__late_blight/1.jpg":  testLeaf(t),
		"tomato__late_blight/2.png":  leafPNG,
		"apple__scab/1.png":          leafPNG,
		"not_a_leaf/page.jpg":        testLeaf(t),
		"tomato__leaf_mold/junk.jpg": []byte("not a photo"),
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	plot := filepath.Join(t.TempDir(), "confusion.png")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"eval", "--json", "--plot", plot, "--device", "cpu", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var rep struct {
		Model     string
		Photos    int
		Failed    []string
		Top1      struct{ N, Hits int }
		Rejected  struct{ N, Hits int }
		Confusion [][]int
		Classes   []string
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	if rep.Model != "contract-v1" || rep.Photos != 5 || len(rep.Failed) != 1 || rep.Top1.N != 3 || rep.Rejected.N != 1 {
		t.Fatalf("report %+v", rep)
	}
	// The contract model has no not_leaf output: it rejects nothing.
	if rep.Rejected.Hits != 0 {
		t.Errorf("rejected %d photos without a not_leaf output", rep.Rejected.Hits)
	}
	// The confusion matrix agrees with diagnose's own top-1 for the same photos.
	var diag bytes.Buffer
	if code := run([]string{"diagnose", "--json", "--no-overlay", "--device", "cpu", filepath.Join(dir, "apple__scab/1.png")}, &diag, &bytes.Buffer{}); code != 0 {
		t.Fatal("diagnose failed")
	}
	var verdict struct{ Top []struct{ Class string } }
	if err := json.Unmarshal(diag.Bytes(), &verdict); err != nil || len(verdict.Top) == 0 {
		t.Fatalf("diagnose --json: %v: %s", err, diag.String())
	}
	top := verdict.Top[0].Class
	scab := slices.Index(rep.Classes, "apple__scab")
	if pred := slices.Index(rep.Classes, top); pred < 0 || rep.Confusion[scab][pred] != 1 {
		t.Errorf("confusion row of apple__scab %v, diagnose says %s", rep.Confusion[scab], top)
	}
	// The confusion matrix where --plot says, the reliability diagram beside it.
	for _, p := range []string{plot, strings.TrimSuffix(plot, ".png") + "-reliability.png"} {
		checkPNG(t, p)
	}
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	if _, err := png.DecodeConfig(f); err != nil {
		t.Errorf("plot %s: %v", path, err)
	}
}

// solidPNG is a 256×256 photo of one colour.
func solidPNG(t *testing.T, c color.Color) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 256, 256))
	draw.Draw(img, img.Bounds(), image.NewUniform(c), image.Point{}, draw.Src)
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestEvalCommandSources runs `cropshield eval` on two folders through a model with both optional
// outputs (unknown_crop from the red channel, not_leaf from the blue): a report per folder and a
// summary in text, an array in JSON, and plots per folder. The expected replies come from the
// model itself, classifying each photo.
func TestEvalCommandSources(t *testing.T) {
	lib, modelPath := testenv.ORTLib(t), testenv.OptionalModel(t, "both")
	t.Setenv("CROPSHIELD_ORT_LIB", lib)
	red, green, blue := solidPNG(t, color.RGBA{255, 0, 0, 255}), solidPNG(t, color.RGBA{0, 255, 0, 255}), solidPNG(t, color.RGBA{0, 0, 255, 255})

	// What the model says about each colour, and so what the bot replies at threshold 0.5.
	const threshold = 0.5
	ctx := t.Context()
	model, err := inference.Load(ctx, modelPath, inference.Options{LibraryPath: lib, Device: inference.DeviceCPU})
	if err != nil {
		t.Fatal(err)
	}
	info := model.Info()
	reply, top := map[string]string{}, map[string]string{}
	for name, data := range map[string][]byte{"red": red, "green": green, "blue": blue} {
		res, err := model.Classify(ctx, data)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case !res.IsLeaf:
			reply[name] = "not a leaf"
		case !res.KnownCrop:
			reply[name] = "unknown crop"
		case res.Top[0].Prob < threshold:
			reply[name] = "unsure"
		default:
			reply[name] = "answered"
		}
		top[name] = res.Top[0].ID
	}
	if err := model.Close(); err != nil {
		t.Fatal(err)
	}
	// The colours were chosen for these replies (see models/contract/gen_optional_outputs.py); the
	// counts below rely on them.
	if want := map[string]string{"red": "unknown crop", "green": "answered", "blue": "not a leaf"}; !maps.Equal(reply, want) {
		t.Fatalf("the model replies %v, want %v", reply, want)
	}

	root := t.TempDir()
	lab, beans := filepath.Join(root, "lab-test"), filepath.Join(root, "beans-test")
	c0, c1 := info.Classes[0], info.Classes[1]
	files := map[string][]byte{
		"lab-test/" + c0 + "/g.png":             green,
		"lab-test/" + c1 + "/g.png":             green,
		"lab-test/not_a_leaf/b.png":             blue,
		"beans-test/unknown_crop/r.png":         red,
		"beans-test/unknown_crop/cassava/g.png": green,
		"beans-test/unknown_crop/b.png":         blue,
		"beans-test/" + c0 + "/r.png":           red,
	}
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wrongGreen := 0 // of the two green leaves of lab-test, those whose top-1 is wrong
	for _, c := range []string{c0, c1} {
		if top["green"] != c {
			wrongGreen++
		}
	}

	plot := filepath.Join(t.TempDir(), "eval.png")
	args := []string{"eval", "--model", modelPath, "--device", "cpu", "--threshold", "0.5"}
	var stdout, stderr bytes.Buffer
	if code := run(append(args, "--plot", plot, lab, beans), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	text := stdout.String()
	for _, want := range []string{
		"model " + info.Version + " on " + lab, "model " + info.Version + " on " + beans,
		fmt.Sprintf("confidently wrong:      %5.1f%% (%d/2)", 100*float64(wrongGreen)/2, wrongGreen),
		"ANSWERED WITH A DIAGNOSIS:  33.3% (1/3)", "refused, unknown crop:      33.3% (1/3)", "refused, not a leaf:        33.3% (1/3)",
		"falsely unknown crop: 100.0% (1/1)",
		"summary (the bot answers from top-1 >= 50%)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	var summary []string
	if i := strings.Index(text, "summary ("); i >= 0 {
		for _, l := range strings.Split(text[i:], "\n") {
			if f := strings.Fields(l); len(f) > 0 && (f[0] == "lab-test" || f[0] == "beans-test") {
				summary = append(summary, f[0])
			}
		}
	}
	if !slices.Equal(summary, []string{"lab-test", "beans-test"}) {
		t.Errorf("summary lines %v:\n%s", summary, text)
	}
	for _, src := range []string{"lab-test", "beans-test"} {
		for _, p := range []string{"eval-" + src + ".png", "eval-" + src + "-reliability.png"} {
			checkPNG(t, filepath.Join(filepath.Dir(plot), p))
		}
	}

	stdout.Reset()
	if code := run(append(args, "--json", lab, beans), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	type counts struct{ N, Hits int }
	var reps []struct {
		Model, Source, Folder string
		Threshold             float64
		Photos                int
		Answered              counts
		ConfidentWrong        counts `json:"confident_wrong"`
		FalseUnknownCrop      counts `json:"false_unknown_crop"`
		Rejected              counts
		UnknownCrop           *struct {
			Photos                    int
			Refused, Unsure, Answered counts
			NotLeaf                   counts `json:"not_leaf"`
			AnsweredAs                []struct {
				Class string
				N     int
			} `json:"answered_as"`
		} `json:"unknown_crop"`
		Reliability []struct{ N int }
	}
	if err := json.Unmarshal(stdout.Bytes(), &reps); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	if len(reps) != 2 {
		t.Fatalf("%d reports", len(reps))
	}
	l, b := reps[0], reps[1]
	if l.Source != "lab-test" || l.Folder != lab || l.Model != info.Version || l.Threshold != threshold || l.Photos != 3 ||
		l.Answered != (counts{2, 2}) || l.ConfidentWrong != (counts{2, wrongGreen}) || l.Rejected != (counts{1, 1}) || l.UnknownCrop != nil {
		t.Errorf("lab-test: %+v", l)
	}
	if b.Source != "beans-test" || b.Folder != beans || b.Photos != 4 || b.FalseUnknownCrop != (counts{1, 1}) || b.Answered != (counts{1, 0}) ||
		b.UnknownCrop == nil || b.UnknownCrop.Photos != 3 || b.UnknownCrop.Refused != (counts{3, 1}) || b.UnknownCrop.NotLeaf != (counts{3, 1}) ||
		b.UnknownCrop.Unsure != (counts{3, 0}) || b.UnknownCrop.Answered != (counts{3, 1}) ||
		len(b.UnknownCrop.AnsweredAs) != 1 || b.UnknownCrop.AnsweredAs[0].Class != top["green"] {
		t.Errorf("beans-test: %+v %+v", b, b.UnknownCrop)
	}
	n := 0
	for _, bin := range l.Reliability {
		n += bin.N
	}
	if len(l.Reliability) != 15 || n != 2 {
		t.Errorf("reliability bins %+v", l.Reliability)
	}
}
