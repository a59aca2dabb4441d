package eval

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var classes = []string{"apple__scab", "apple__healthy", "tomato__late_blight", "tomato__early_blight", "tomato__healthy"}

// probs builds a probability vector from class → probability (the rest 0).
func probs(m map[int]float64) []float64 {
	p := make([]float64, len(classes))
	for i, v := range m {
		p[i] = v
	}
	return p
}

// TestEvaluateExact checks every figure of a small constructed evaluation by hand.
func TestEvaluateExact(t *testing.T) {
	type photo struct {
		label   string
		class   int
		out     Outcome
		failErr error
	}
	photos := []photo{
		// 1: tomato late blight, right at 0.9.
		{"tomato__late_blight", 2, Outcome{Probs: probs(map[int]float64{2: 0.9, 3: 0.1}), Latency: 10 * time.Millisecond}, nil},
		// 2: tomato late blight, predicted apple scab (0.5); within tomato, late blight (0.3) wins; top-3 holds it.
		{"tomato__late_blight", 2, Outcome{Probs: probs(map[int]float64{0: 0.5, 2: 0.3, 3: 0.2}), Latency: 20 * time.Millisecond}, nil},
		// 3: tomato early blight, predicted apple scab 0.4, apple healthy 0.3, late blight 0.2, early 0.1:
		//    not in top-3 overall; within tomato late (0.2) beats early (0.1): crop top-1 miss, crop top-3 hit.
		{"tomato__early_blight", 3, Outcome{Probs: probs(map[int]float64{0: 0.4, 1: 0.3, 2: 0.2, 3: 0.1}), Latency: 30 * time.Millisecond}, nil},
		// 4: apple healthy, right at 0.6, but falsely rejected as not a leaf.
		{"apple__healthy", 1, Outcome{Probs: probs(map[int]float64{1: 0.6, 0: 0.4}), Rejected: true, Latency: 40 * time.Millisecond}, nil},
		// 5, 6: not leaves: one rejected, one not.
		{"not_a_leaf", -1, Outcome{Probs: probs(map[int]float64{4: 1}), Rejected: true, Latency: 50 * time.Millisecond}, nil},
		{"not_a_leaf", -1, Outcome{Probs: probs(map[int]float64{4: 1}), Latency: 60 * time.Millisecond}, nil},
		// 7: unreadable.
		{"tomato__healthy", 4, Outcome{}, errors.New("truncated")},
	}
	var samples []Sample
	byPath := map[string]photo{}
	for i, p := range photos {
		s := Sample{Path: filepath.Join(p.label, string(rune('a'+i))+".jpg"), Label: p.label, Class: p.class}
		samples = append(samples, s)
		byPath[s.Path] = p
	}
	calls := 0
	r, err := Evaluate(context.Background(), samples, Config{Classes: classes, Threshold: 0.5, Workers: 1}, func(_ context.Context, s Sample) (Outcome, error) {
		calls++
		return byPath[s.Path].out, byPath[s.Path].failErr
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 7 || r.Photos != 7 || len(r.Failed) != 1 || r.Failed[0] != samples[6].Path {
		t.Fatalf("photos %d, calls %d, failed %v", r.Photos, calls, r.Failed)
	}
	for _, tc := range []struct {
		name string
		got  Counts
		hits int
		n    int
	}{
		{"top1", r.Top1, 2, 4}, {"top3", r.Top3, 3, 4}, {"crop top1", r.CropTop1, 3, 4}, {"crop top3", r.CropTop3, 4, 4},
		{"false rejected", r.FalseRejected, 1, 4}, {"rejected", r.Rejected, 1, 2},
		// At threshold 0.5: photos 1 (0.9) and 2 (0.5) get a diagnosis, 3 (0.4) "not sure", 4 is
		// refused; of the two diagnoses, photo 2's is wrong.
		{"answered", r.Answered, 2, 4}, {"unsure", r.Unsure, 1, 4}, {"false unknown crop", r.FalseUnknownCrop, 0, 4},
		{"confident wrong", r.ConfidentWrong, 1, 2},
	} {
		if tc.got.Hits != tc.hits || tc.got.N != tc.n || tc.got.Rate != float64(tc.hits)/float64(tc.n) {
			t.Errorf("%s = %+v, want %d/%d", tc.name, tc.got, tc.hits, tc.n)
		}
	}
	// Calibration: confidences 0.9 (right), 0.5 (wrong), 0.4 (wrong), 0.6 (right), each alone in its bin:
	// (|1-0.9| + |0-0.5| + |0-0.4| + |1-0.6|) / 4 = 0.35.
	if math.Abs(r.ECE-0.35) > 1e-12 {
		t.Errorf("ECE = %v, want 0.35", r.ECE)
	}
	// Noise floor: each photo alone in its bin is off by E|Bernoulli(c) - c| = 2c(1-c) on average:
	// (0.18 + 0.5 + 0.48 + 0.48) / 4 = 0.41.
	if math.Abs(r.ECEFloor.Mean-0.41) > 0.01 || r.ECEFloor.P95 < r.ECEFloor.Mean || r.ECEFloor.P95 > 1 {
		t.Errorf("ECE floor %+v, want mean 0.41", r.ECEFloor)
	}
	want := map[[2]int]int{{2, 2}: 1, {2, 0}: 1, {3, 0}: 1, {1, 1}: 1}
	for i := range classes {
		for j := range classes {
			if r.Confusion[i][j] != want[[2]int{i, j}] {
				t.Errorf("confusion[%s][%s] = %d, want %d", classes[i], classes[j], r.Confusion[i][j], want[[2]int{i, j}])
			}
		}
	}
	// apple__scab has no photos but is named by photo 2's wrong diagnosis.
	if len(r.PerClass) != 4 || r.PerClass[0].Class != "apple__scab" || r.PerClass[0].Top1.N != 0 || r.PerClass[0].WrongWhenNamed != (Counts{1, 1, 1}) ||
		r.PerClass[1].Class != "apple__healthy" || r.PerClass[2].Top1.Rate != 0.5 || r.PerClass[2].ConfidentWrong != (Counts{2, 1, 0.5}) ||
		r.PerClass[3].CropTop3.Rate != 1 || r.PerClass[3].Unsure != (Counts{1, 1, 1}) {
		t.Errorf("per class %+v", r.PerClass)
	}
	if r.UnknownCrop != nil {
		t.Errorf("unknown crop report without an unknown_crop folder: %+v", r.UnknownCrop)
	}
	if len(r.Others) != 1 || r.Others[0].Folder != "not_a_leaf" || r.Others[0].Rejected.Rate != 0.5 {
		t.Errorf("others %+v", r.Others)
	}
	if r.Latency.MeanMS != 35 || r.Latency.P50MS != 30 || r.Latency.MaxMS != 60 || r.Latency.P99MS != 60 {
		t.Errorf("latency %+v", r.Latency)
	}

	// The same with parallel workers gives the same report.
	r2, err := Evaluate(context.Background(), samples, Config{Classes: classes, Threshold: 0.5, Workers: 4}, func(_ context.Context, s Sample) (Outcome, error) {
		return byPath[s.Path].out, byPath[s.Path].failErr
	}, nil)
	if err != nil || r2.Top1 != r.Top1 || r2.ECE != r.ECE || r2.Latency != r.Latency {
		t.Errorf("with 4 workers: %+v %v", r2.Top1, err)
	}

	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"top-1:                   50.0% (2/4)", "not-a-leaf rejected:     50.0% (1/2)", "calibration error:      35.00%", "1 unreadable",
		"confidently wrong:       50.0% (1/2)  of the diagnoses", "  a diagnosis:           50.0% (2/4)"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("text report lacks %q:\n%s", s, text.String())
		}
	}
	var img bytes.Buffer
	if err := r.PlotConfusion(&img); err != nil {
		t.Fatal(err)
	}
	if cfg, err := png.DecodeConfig(&img); err != nil || cfg.Width < 100 || cfg.Height < 100 {
		t.Errorf("plot: %+v %v", cfg, err)
	}
	img.Reset()
	if err := r.PlotReliability(&img, "lab-test"); err != nil {
		t.Fatal(err)
	}
	if cfg, err := png.DecodeConfig(&img); err != nil || cfg.Width < 100 || cfg.Height < 100 {
		t.Errorf("reliability plot: %+v %v", cfg, err)
	}
}

// TestCalibration: the ECE, and its noise floor against the exact distribution of a perfectly
// calibrated model's ECE when every photo has the same confidence c: |Binomial(n, c)/n - c|.
func TestCalibration(t *testing.T) {
	confs := func(n int, c float64) []float64 { return slices.Repeat([]float64{c}, n) }
	rights := func(n int, r bool) []bool { return slices.Repeat([]bool{r}, n) }
	for _, tc := range []struct {
		name      string
		confs     []float64
		rights    []bool
		ece       float64
		mean, tol float64 // the floor's exact mean, and the Monte Carlo tolerance
		p95       float64 // the floor's exact 95th percentile
	}{
		{"certain and right", confs(20, 1), rights(20, true), 0, 0, 0, 0},
		// E|Binomial(50, 0.9)/50 - 0.9| = 0.0333; P(|.| <= 0.06) = 0.908, P(|.| <= 0.08) = 0.970.
		{"confident and wrong", confs(50, 0.9), rights(50, false), 0.9, 0.0333, 0.004, 0.08},
		// E|Binomial(10, 0.8)/10 - 0.8| = 0.0966; P(|.| <= 0.1) = 0.772, P(|.| <= 0.2) = 0.967.
		{"a little over-confident", confs(10, 0.8), append(rights(7, true), rights(3, false)...), 0.1, 0.0966, 0.006, 0.2},
		// E|Binomial(4, 0.5)/4 - 0.5| = 12/64; P(|.| <= 0.25) = 0.875.
		{"coin flips", confs(4, 0.5), []bool{true, false, true, false}, 0, 0.1875, 0.01, 0.5},
		{"no photos", nil, nil, 0, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, floor := calibration(tc.confs, tc.rights)
			if math.Abs(e-tc.ece) > 1e-12 {
				t.Errorf("ECE = %v, want %v", e, tc.ece)
			}
			if math.Abs(floor.Mean-tc.mean) > tc.tol+1e-12 || math.Abs(floor.P95-tc.p95) > 1e-9 {
				t.Errorf("floor = %+v, want mean %.4f ± %.4f, p95 %v", floor, tc.mean, tc.tol, tc.p95)
			}
			if e2, floor2 := calibration(tc.confs, tc.rights); e2 != e || floor2 != floor {
				t.Errorf("second run differs: %v %+v", e2, floor2)
			}
		})
	}
}

func TestScan(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"tomato__late_blight/a.JPG", "tomato__late_blight/sub/b.png", "tomato__late_blight/notes.txt",
		"not_a_leaf/cat.webp", ".hidden/x.jpg", "loose.jpg"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Scan(dir, classes)
	if err != nil {
		t.Fatal(err)
	}
	want := []Sample{
		{filepath.Join(dir, "not_a_leaf/cat.webp"), "not_a_leaf", -1},
		{filepath.Join(dir, "tomato__late_blight/a.JPG"), "tomato__late_blight", 2},
		{filepath.Join(dir, "tomato__late_blight/sub/b.png"), "tomato__late_blight", 2},
	}
	if len(got) != len(want) {
		t.Fatalf("Scan = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("sample %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := Scan(t.TempDir(), classes); !errors.Is(err, ErrNoPhotos) {
		t.Errorf("empty folder: %v", err)
	}
}

// cnt is hits out of n with its rate, as Evaluate finishes it.
func cnt(hits, n int) Counts {
	c := Counts{N: n, Hits: hits}
	c.finish()
	return c
}

// shot is one hand-made photo: its folder and the model's answer.
type shot struct {
	label string
	out   Outcome
}

// evaluateShots runs Evaluate on the shots at the given threshold.
func evaluateShots(t *testing.T, threshold float64, shots []shot) Report {
	t.Helper()
	samples := make([]Sample, len(shots))
	for i, s := range shots {
		samples[i] = Sample{Path: fmt.Sprintf("%s/%02d.jpg", s.label, i), Label: s.label, Class: slices.Index(classes, s.label)}
	}
	r, err := Evaluate(context.Background(), samples, Config{Classes: classes, Threshold: threshold, Workers: 2}, func(_ context.Context, s Sample) (Outcome, error) {
		return shots[slices.Index(samples, s)].out, nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestBotReplies checks what the bot would reply to hand-made outcomes: diagnoses, "not sure",
// refusals as not a leaf or as an unknown crop, confidently wrong diagnoses, and the replies to
// the leaves of unknown_crop/.
func TestBotReplies(t *testing.T) {
	const scab, healthy, late, early, tHealthy = 0, 1, 2, 3, 4
	p := func(class int, prob float64) []float64 {
		other := (class + 1) % len(classes)
		return probs(map[int]float64{class: prob, other: 1 - prob})
	}
	type leaves struct {
		answered, unsure, notLeaf, unknown, confWrong Counts
		perClass                                      map[string][2]Counts // class → confident wrong, wrong when named
	}
	for _, tc := range []struct {
		name      string
		threshold float64
		shots     []shot
		leaves    leaves
		rejected  Counts // not_a_leaf/
		unknown   *UnknownCropReport
	}{{
		name:      "threshold is inclusive; a wrong answer counts under both classes",
		threshold: 0.6,
		shots: []shot{
			{"tomato__late_blight", Outcome{Probs: p(late, 0.6)}},  // right at the threshold: answered
			{"tomato__late_blight", Outcome{Probs: p(scab, 0.7)}},  // confidently wrong: says apple scab
			{"tomato__late_blight", Outcome{Probs: p(scab, 0.59)}}, // wrong but unsure
			{"apple__scab", Outcome{Probs: p(scab, 0.95)}},         // right
		},
		leaves: leaves{
			answered: cnt(3, 4), unsure: cnt(1, 4), notLeaf: cnt(0, 4), unknown: cnt(0, 4), confWrong: cnt(1, 3),
			perClass: map[string][2]Counts{
				"apple__scab":         {cnt(0, 1), cnt(1, 2)},
				"tomato__late_blight": {cnt(1, 2), cnt(0, 1)},
			},
		},
	}, {
		name:      "refusals come before the threshold; not a leaf before unknown crop",
		threshold: 0.5,
		shots: []shot{
			{"tomato__early_blight", Outcome{Probs: p(late, 0.99), UnknownCrop: true}},                  // falsely unknown crop, not a wrong answer
			{"tomato__early_blight", Outcome{Probs: p(early, 0.99), Rejected: true, UnknownCrop: true}}, // not a leaf first
			{"tomato__early_blight", Outcome{Probs: p(late, 0.3), UnknownCrop: true}},                   // unsure would come after
			{"tomato__early_blight", Outcome{Probs: p(tHealthy, 0.8)}},                                  // confidently "healthy", wrong
		},
		leaves: leaves{
			answered: cnt(1, 4), unsure: cnt(0, 4), notLeaf: cnt(1, 4), unknown: cnt(2, 4), confWrong: cnt(1, 1),
			perClass: map[string][2]Counts{
				"tomato__early_blight": {cnt(1, 1), {}},
				"tomato__healthy":      {{}, cnt(1, 1)},
			},
		},
	}, {
		name:      "unknown_crop folder: refused, not a leaf, unsure, answered; kept apart from not_a_leaf",
		threshold: 0.5,
		shots: []shot{
			{UnknownCropFolder, Outcome{Probs: p(late, 0.9), UnknownCrop: true}},                            // refused: right
			{UnknownCropFolder, Outcome{Probs: p(late, 0.9), UnknownCrop: true, Rejected: true}},            // refused as not a leaf
			{UnknownCropFolder, Outcome{Probs: probs(map[int]float64{early: 0.45, late: 0.3, scab: 0.25})}}, // unsure
			{UnknownCropFolder, Outcome{Probs: p(late, 0.8)}},                                               // answered: a disease
			{UnknownCropFolder, Outcome{Probs: p(healthy, 0.9)}},                                            // answered: healthy
			{UnknownCropFolder, Outcome{Probs: p(late, 0.5)}},                                               // answered: a disease
			{"not_a_leaf", Outcome{Probs: p(late, 0.9), Rejected: true}},
			{"apple__healthy", Outcome{Probs: p(healthy, 0.9)}},
		},
		leaves: leaves{
			answered: cnt(1, 1), unsure: cnt(0, 1), notLeaf: cnt(0, 1), unknown: cnt(0, 1), confWrong: cnt(0, 1),
			perClass: map[string][2]Counts{"apple__healthy": {cnt(0, 1), cnt(0, 1)}},
		},
		rejected: cnt(1, 1),
		unknown: &UnknownCropReport{
			Folder: UnknownCropFolder, Photos: 6,
			Refused: cnt(1, 6), NotLeaf: cnt(1, 6), Unsure: cnt(1, 6), Answered: cnt(3, 6), AnsweredDisease: cnt(2, 6),
			AnsweredAs: []ClassCount{{"tomato__late_blight", 2}, {"apple__healthy", 1}},
		},
	}, {
		name:      "unknown_crop folder alone: no leaf figures",
		threshold: 0.5,
		shots: []shot{
			{UnknownCropFolder, Outcome{Probs: slices.Repeat([]float64{0.2}, 5)}},
			{UnknownCropFolder, Outcome{Probs: slices.Repeat([]float64{0.2}, 5), UnknownCrop: true}},
		},
		leaves: leaves{perClass: map[string][2]Counts{}},
		unknown: &UnknownCropReport{
			Folder: UnknownCropFolder, Photos: 2,
			Refused: cnt(1, 2), NotLeaf: cnt(0, 2), Unsure: cnt(1, 2), Answered: cnt(0, 2), AnsweredDisease: cnt(0, 2),
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r := evaluateShots(t, tc.threshold, tc.shots)
			got := leaves{
				answered: r.Answered, unsure: r.Unsure, notLeaf: r.FalseRejected, unknown: r.FalseUnknownCrop, confWrong: r.ConfidentWrong,
				perClass: map[string][2]Counts{},
			}
			for _, c := range r.PerClass {
				got.perClass[c.Class] = [2]Counts{c.ConfidentWrong, c.WrongWhenNamed}
			}
			if !reflect.DeepEqual(got, tc.leaves) {
				t.Errorf("leaves:\n got %+v\nwant %+v", got, tc.leaves)
			}
			if r.Rejected != tc.rejected {
				t.Errorf("not_a_leaf rejected %+v, want %+v", r.Rejected, tc.rejected)
			}
			if !reflect.DeepEqual(r.UnknownCrop, tc.unknown) {
				t.Errorf("unknown crop:\n got %+v\nwant %+v", r.UnknownCrop, tc.unknown)
			}
			if r.Threshold != tc.threshold {
				t.Errorf("threshold %v", r.Threshold)
			}
			// Every leaf gets exactly one reply.
			if n := r.Answered.Hits + r.Unsure.Hits + r.FalseRejected.Hits + r.FalseUnknownCrop.Hits; n != r.Top1.N {
				t.Errorf("%d replies for %d leaves", n, r.Top1.N)
			}
			var text bytes.Buffer
			if err := r.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if u := tc.unknown; u != nil && !strings.Contains(text.String(), "ANSWERED WITH A DIAGNOSIS: "+pct(u.Answered)) {
				t.Errorf("text lacks the unknown-crop answers:\n%s", text.String())
			}
		})
	}
}

// TestReliability: the bins hold every photo, and their gaps weighted by photos are the ECE.
func TestReliability(t *testing.T) {
	confs := []float64{0.05, 0.5, 0.52, 0.55, 0.9, 0.95, 1, 1}
	rights := []bool{false, true, false, false, true, true, true, false}
	bins := reliability(confs, rights)
	if len(bins) != ECEBins || bins[0].Lo != 0 || bins[ECEBins-1].Hi != 1 {
		t.Fatalf("bins %+v", bins)
	}
	want := map[int]ReliabilityBin{ // bin index → (n, right, mean confidence)
		0:  {N: 1, Right: 0, Confidence: 0.05},
		7:  {N: 2, Right: 1, Confidence: 0.51}, // [0.467, 0.533)
		8:  {N: 1, Right: 0, Confidence: 0.55}, // [0.533, 0.6)
		13: {N: 1, Right: 1, Confidence: 0.9},  // [0.867, 0.933)
		14: {N: 3, Right: 2, Confidence: (0.95 + 1 + 1) / 3},
	}
	e := 0.0
	for i, b := range bins {
		w := want[i]
		if b.N != w.N || b.Right != w.Right || math.Abs(b.Confidence-w.Confidence) > 1e-12 {
			t.Errorf("bin %d = %+v, want n %d right %d confidence %v", i, b, w.N, w.Right, w.Confidence)
		}
		if b.N > 0 && b.Accuracy != float64(b.Right)/float64(b.N) {
			t.Errorf("bin %d accuracy %v", i, b.Accuracy)
		}
		e += float64(b.N) / float64(len(confs)) * math.Abs(b.Accuracy-b.Confidence)
	}
	if got := ece(confs, rights); math.Abs(got-e) > 1e-12 {
		t.Errorf("ECE %v, bins say %v", got, e)
	}
}

// TestSummary: one line per source with its figures.
func TestSummary(t *testing.T) {
	lab := evaluateShots(t, 0.5, []shot{
		{"tomato__late_blight", Outcome{Probs: probs(map[int]float64{2: 0.9, 3: 0.1})}},
		{"tomato__late_blight", Outcome{Probs: probs(map[int]float64{3: 0.8, 2: 0.2})}}, // confidently wrong, crop top-3 right
		{"not_a_leaf", Outcome{Probs: probs(map[int]float64{2: 1}), Rejected: true}},
	})
	beans := evaluateShots(t, 0.5, []shot{
		{UnknownCropFolder, Outcome{Probs: probs(map[int]float64{2: 0.9, 3: 0.1})}},
		{UnknownCropFolder, Outcome{Probs: probs(map[int]float64{2: 0.9, 3: 0.1}), UnknownCrop: true}},
		{UnknownCropFolder, Outcome{Probs: probs(map[int]float64{2: 0.4, 3: 0.6})}},
		{UnknownCropFolder, Outcome{Probs: probs(map[int]float64{2: 0.4, 3: 0.6}), Rejected: true}},
		{"apple__scab", Outcome{Probs: probs(map[int]float64{0: 0.9, 1: 0.1}), UnknownCrop: true}},
	})
	var out bytes.Buffer
	if err := WriteSummary(&out, []Source{{"lab-test", lab}, {"beans-test", beans}}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out.String(), "\n")
	if len(lines) < 4 || lines[0] != "summary (the bot answers from top-1 >= 50%)" {
		t.Fatalf("summary:\n%s", out.String())
	}
	// ECE of lab: (|1-0.9| + |0-0.8|)/2, each alone in its bin.
	for i, want := range [][]string{
		// source, photos, leaves, top-1, crop top-1, crop top-3, ECE, floor p95, conf. wrong, false not-leaf, false unknown, rejected, unknown answered
		{"lab-test", "3", "2", "50.0%", "50.0%", "100.0%", "45.0%", fmt.Sprintf("%.1f%%", 100*lab.ECEFloor.P95), "50.0%", "0.0%", "0.0%", "100.0%", "-"},
		{"beans-test", "5", "1", "100.0%", "100.0%", "100.0%", "10.0%", fmt.Sprintf("%.1f%%", 100*beans.ECEFloor.P95), "-", "0.0%", "100.0%", "-", "50.0%"},
	} {
		if got := strings.Fields(lines[2+i]); !slices.Equal(got, want) {
			t.Errorf("line %d = %q, want %q", i, got, want)
		}
	}
}

// TestPlotsFitTheirText: nothing is drawn in the right margin of either plot, whatever the
// number of classes: with two classes the confusion matrix's captions ran off its right edge,
// and the reliability diagram's notes off its own, and a threshold near 1 put its label outside.
func TestPlotsFitTheirText(t *testing.T) {
	samples := []Sample{{Path: "a.jpg", Label: "apple__scab", Class: 0}, {Path: "b.jpg", Label: "apple__healthy", Class: 1}}
	for _, threshold := range []float64{0.5, 0.99} {
		r, err := Evaluate(context.Background(), samples, Config{Classes: classes, Threshold: threshold, Workers: 1},
			func(_ context.Context, s Sample) (Outcome, error) {
				return Outcome{Probs: probs(map[int]float64{0: 0.7, 1: 0.3})}, nil
			}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for name, plot := range map[string]func(*bytes.Buffer) error{
			"confusion":   func(b *bytes.Buffer) error { return r.PlotConfusion(b) },
			"reliability": func(b *bytes.Buffer) error { return r.PlotReliability(b, "lab-test") },
		} {
			var buf bytes.Buffer
			if err := plot(&buf); err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(&buf)
			if err != nil {
				t.Fatal(err)
			}
			b := img.Bounds()
			const margin = 6 // both plots keep a pad of 8 px or more
			for x := b.Max.X - margin; x < b.Max.X; x++ {
				for y := b.Min.Y; y < b.Max.Y; y++ {
					if r, g, bl, _ := img.At(x, y).RGBA(); r != 0xffff || g != 0xffff || bl != 0xffff {
						t.Fatalf("%s (threshold %v), %dx%d: ink at (%d, %d) in the right margin: text cut at the edge", name, threshold, b.Dx(), b.Dy(), x, y)
					}
				}
			}
		}
	}
}
