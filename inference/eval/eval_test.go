package eval

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
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
	r, err := Evaluate(context.Background(), samples, classes, func(_ context.Context, s Sample) (Outcome, error) {
		calls++
		return byPath[s.Path].out, byPath[s.Path].failErr
	}, 1, nil)
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
	if len(r.PerClass) != 3 || r.PerClass[0].Class != "apple__healthy" || r.PerClass[1].Top1.Rate != 0.5 || r.PerClass[2].CropTop3.Rate != 1 {
		t.Errorf("per class %+v", r.PerClass)
	}
	if len(r.Others) != 1 || r.Others[0].Folder != "not_a_leaf" || r.Others[0].Rejected.Rate != 0.5 {
		t.Errorf("others %+v", r.Others)
	}
	if r.Latency.MeanMS != 35 || r.Latency.P50MS != 30 || r.Latency.MaxMS != 60 || r.Latency.P99MS != 60 {
		t.Errorf("latency %+v", r.Latency)
	}

	// The same with parallel workers gives the same report.
	r2, err := Evaluate(context.Background(), samples, classes, func(_ context.Context, s Sample) (Outcome, error) {
		return byPath[s.Path].out, byPath[s.Path].failErr
	}, 4, nil)
	if err != nil || r2.Top1 != r.Top1 || r2.ECE != r.ECE || r2.Latency != r.Latency {
		t.Errorf("with 4 workers: %+v %v", r2.Top1, err)
	}

	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"top-1:                   50.0% (2/4)", "not-a-leaf rejected:     50.0% (1/2)", "calibration error:      35.00%", "1 unreadable"} {
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
