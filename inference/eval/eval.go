// Package eval measures a CropShield model on a folder of labelled photos, through the same
// decoding, preprocessing and session as the bot: top-1 and top-3 overall and per class, accuracy
// within the true crop, the confusion matrix, calibration error, not-a-leaf rejection and latency.
//
// The folder holds one sub-folder per class id (crop__disease). Sub-folders whose name is not a
// model class (not_a_leaf/, say) hold photos the model must reject as not a leaf.
package eval

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// ErrNoPhotos is returned by Scan for a folder without any photo in a sub-folder.
var ErrNoPhotos = errors.New("eval: no photos found")

// Sample is one photo and the folder it came from.
type Sample struct {
	Path  string
	Label string // the sub-folder's name
	Class int    // index of Label in the model's classes, -1 if it is not a class
}

// photoExts are the file endings Scan picks up (any case).
var photoExts = []string{".jpg", ".jpeg", ".png", ".webp"}

// Scan lists the photos of dir's sub-folders, sorted by path.
func Scan(dir string, classes []string) ([]Sample, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	var out []Sample
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		class := slices.Index(classes, e.Name())
		err := filepath.WalkDir(filepath.Join(dir, e.Name()), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !slices.Contains(photoExts, strings.ToLower(filepath.Ext(p))) {
				return nil
			}
			out = append(out, Sample{Path: p, Label: e.Name(), Class: class})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("eval: %w", err)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w in the sub-folders of %s (one folder per class id)", ErrNoPhotos, dir)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// Outcome is the model's answer for one photo.
type Outcome struct {
	Probs    []float64 // every class, in the model's order (after temperature)
	Rejected bool      // judged not a leaf
	Latency  time.Duration
}

// Classifier answers for one sample; an error counts the photo as failed (unreadable).
type Classifier func(ctx context.Context, s Sample) (Outcome, error)

// Counts is a hit rate: Hits out of N.
type Counts struct {
	N    int     `json:"n"`
	Hits int     `json:"hits"`
	Rate float64 `json:"rate"` // Hits/N, 0 when N is 0
}

func (c *Counts) add(hit bool) {
	c.N++
	if hit {
		c.Hits++
	}
}

func (c *Counts) finish() {
	if c.N > 0 {
		c.Rate = float64(c.Hits) / float64(c.N)
	}
}

// ClassReport is one class's figures.
type ClassReport struct {
	Class         string `json:"class"`
	Top1          Counts `json:"top1"`
	Top3          Counts `json:"top3"`
	CropTop1      Counts `json:"crop_top1"`
	CropTop3      Counts `json:"crop_top3"`
	FalseRejected Counts `json:"false_rejected"`
}

// OtherFolder is a sub-folder that is not a class: its photos must be rejected.
type OtherFolder struct {
	Folder   string `json:"folder"`
	Rejected Counts `json:"rejected"`
}

// Latency summarizes per-photo time through decode, preprocessing and inference.
type Latency struct {
	MeanMS float64 `json:"mean_ms"`
	P50MS  float64 `json:"p50_ms"`
	P95MS  float64 `json:"p95_ms"`
	P99MS  float64 `json:"p99_ms"`
	MaxMS  float64 `json:"max_ms"`
}

// Report is everything Evaluate measured.
type Report struct {
	Photos int      `json:"photos"`
	Failed []string `json:"failed,omitempty"` // paths that could not be read
	// Over the photos of class folders:
	Top1          Counts  `json:"top1"`
	Top3          Counts  `json:"top3"`
	CropTop1      Counts  `json:"crop_top1"` // argmax among the classes of the photo's crop
	CropTop3      Counts  `json:"crop_top3"`
	FalseRejected Counts  `json:"false_rejected"` // leaf photos refused as not a leaf
	ECE           float64 `json:"ece"`            // expected calibration error of top-1, 15 bins
	// ECEFloor is what sampling noise alone makes of ECE on this many photos: the ECE a perfectly
	// calibrated model with the same confidences measures on average (Mean) and in 95 % of
	// draws at most (P95). A measured ECE above P95 is miscalibration, not noise; one below it
	// cannot be told apart from perfect calibration with this many photos.
	ECEFloor  ECEFloor      `json:"ece_floor"`
	PerClass  []ClassReport `json:"per_class"` // classes with photos, in model order
	Classes   []string      `json:"classes"`
	Confusion [][]int       `json:"confusion"` // [true][predicted], model order
	// Over the photos of other folders:
	Rejected Counts        `json:"rejected"`
	Others   []OtherFolder `json:"others,omitempty"`
	Latency  Latency       `json:"latency"`
}

// Crop is the crop part of a class id: "tomato" of "tomato__late_blight".
func Crop(class string) string {
	c, _, _ := strings.Cut(class, "__")
	return c
}

// ECEBins is the number of equal-width confidence bins of the calibration error.
const ECEBins = 15

// Evaluate runs classify over the samples with the given number of workers (progress, if set,
// is called after each photo, from one goroutine at a time) and computes the report.
func Evaluate(ctx context.Context, samples []Sample, classes []string, classify Classifier, workers int, progress func(done int)) (Report, error) {
	outcomes, errs := runAll(ctx, samples, classify, workers, progress)
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}
	k := len(classes)
	r := Report{Photos: len(samples), Classes: classes, Confusion: make([][]int, k)}
	for i := range r.Confusion {
		r.Confusion[i] = make([]int, k)
	}
	per := make([]ClassReport, k)
	for i, c := range classes {
		per[i].Class = c
	}
	others := map[string]*OtherFolder{}
	var confs []float64
	var rights []bool
	var lat []float64
	for i, s := range samples {
		o, err := outcomes[i], errs[i]
		if err != nil {
			r.Failed = append(r.Failed, s.Path)
			continue
		}
		if len(o.Probs) != k {
			return r, fmt.Errorf("eval: %s: %d probabilities for %d classes", s.Path, len(o.Probs), k)
		}
		lat = append(lat, float64(o.Latency.Microseconds())/1000)
		if s.Class < 0 {
			of, ok := others[s.Label]
			if !ok {
				of = &OtherFolder{Folder: s.Label}
				others[s.Label] = of
			}
			of.Rejected.add(o.Rejected)
			r.Rejected.add(o.Rejected)
			continue
		}
		ranked := rank(o.Probs, nil)
		crop := Crop(s.Label)
		inCrop := rank(o.Probs, func(c int) bool { return Crop(classes[c]) == crop })
		top1, top3 := ranked[0] == s.Class, slices.Contains(ranked[:min(3, k)], s.Class)
		ctop1, ctop3 := inCrop[0] == s.Class, slices.Contains(inCrop[:min(3, len(inCrop))], s.Class)
		pc := &per[s.Class]
		for _, pair := range []struct {
			all, one *Counts
			hit      bool
		}{
			{&r.Top1, &pc.Top1, top1}, {&r.Top3, &pc.Top3, top3},
			{&r.CropTop1, &pc.CropTop1, ctop1}, {&r.CropTop3, &pc.CropTop3, ctop3},
			{&r.FalseRejected, &pc.FalseRejected, o.Rejected},
		} {
			pair.all.add(pair.hit)
			pair.one.add(pair.hit)
		}
		r.Confusion[s.Class][ranked[0]]++
		confs = append(confs, o.Probs[ranked[0]])
		rights = append(rights, top1)
	}
	r.ECE, r.ECEFloor = calibration(confs, rights)
	for _, c := range []*Counts{&r.Top1, &r.Top3, &r.CropTop1, &r.CropTop3, &r.FalseRejected, &r.Rejected} {
		c.finish()
	}
	for i := range per {
		if per[i].Top1.N == 0 {
			continue
		}
		for _, c := range []*Counts{&per[i].Top1, &per[i].Top3, &per[i].CropTop1, &per[i].CropTop3, &per[i].FalseRejected} {
			c.finish()
		}
		r.PerClass = append(r.PerClass, per[i])
	}
	for _, name := range slices.Sorted(maps.Keys(others)) {
		others[name].Rejected.finish()
		r.Others = append(r.Others, *others[name])
	}
	r.Latency = summarize(lat)
	return r, nil
}

// ECEFloor describes the calibration error of a perfectly calibrated model (see Report.ECEFloor).
type ECEFloor struct {
	Mean float64 `json:"mean"`
	P95  float64 `json:"p95"`
}

// eceDraws is the number of simulated label sets behind ECEFloor; the draws are seeded, so a
// report is reproducible.
const eceDraws = 1000

// ece is the expected calibration error of top-1 confidences and whether each top-1 was right:
// the photo-weighted mean over ECEBins equal-width bins of |accuracy - mean confidence|.
func ece(confs []float64, rights []bool) float64 {
	var conf, acc [ECEBins]float64
	for i, c := range confs {
		b := min(int(c*ECEBins), ECEBins-1)
		conf[b] += c
		if rights[i] {
			acc[b]++
		}
	}
	e := 0.0
	for b := range ECEBins {
		e += math.Abs(acc[b] - conf[b])
	}
	return e / float64(len(confs))
}

// calibration returns the ECE and its noise floor, found by drawing each top-1's rightness with
// exactly its stated confidence, eceDraws times.
func calibration(confs []float64, rights []bool) (float64, ECEFloor) {
	if len(confs) == 0 {
		return 0, ECEFloor{}
	}
	rng := rand.New(rand.NewPCG(20251125, uint64(len(confs))))
	sims := make([]float64, eceDraws)
	drawn := make([]bool, len(confs))
	var floor ECEFloor
	for d := range sims {
		for i, c := range confs {
			drawn[i] = rng.Float64() < c
		}
		sims[d] = ece(confs, drawn)
		floor.Mean += sims[d] / eceDraws
	}
	slices.Sort(sims)
	floor.P95 = sims[eceDraws*95/100-1]
	return ece(confs, rights), floor
}

// runAll classifies every sample on a pool of workers, keeping results in sample order.
func runAll(ctx context.Context, samples []Sample, classify Classifier, workers int, progress func(int)) ([]Outcome, []error) {
	outcomes, errs := make([]Outcome, len(samples)), make([]error, len(samples))
	next := make(chan int)
	var mu sync.Mutex
	done := 0
	var wg sync.WaitGroup
	for range max(1, workers) {
		wg.Go(func() {
			for i := range next {
				outcomes[i], errs[i] = classify(ctx, samples[i])
				mu.Lock()
				done++
				if progress != nil {
					progress(done)
				}
				mu.Unlock()
			}
		})
	}
feed:
	for i := range samples {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return outcomes, errs
}

// rank returns the class indices allowed by keep (all if nil), most probable first.
func rank(probs []float64, keep func(int) bool) []int {
	var idx []int
	for i := range probs {
		if keep == nil || keep(i) {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case probs[a] > probs[b]:
			return -1
		case probs[a] < probs[b]:
			return 1
		}
		return 0
	})
	return idx
}

func summarize(ms []float64) Latency {
	if len(ms) == 0 {
		return Latency{}
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	var sum float64
	for _, v := range s {
		sum += v
	}
	q := func(p float64) float64 { return s[min(len(s)-1, int(math.Ceil(p*float64(len(s))))-1)] }
	return Latency{MeanMS: sum / float64(len(s)), P50MS: q(0.50), P95MS: q(0.95), P99MS: q(0.99), MaxMS: s[len(s)-1]}
}
