// Package eval measures a CropShield model on a folder of labelled photos, through the same
// decoding, preprocessing and session as the bot: top-1 and top-3 overall and per class, accuracy
// within the true crop, the confusion matrix, calibration error and its reliability diagram, what
// the bot would answer (a diagnosis, "not sure", a refusal) and how often a confident answer is
// wrong, not-a-leaf and unknown-crop refusals, and latency.
//
// The folder holds one sub-folder per class id (crop__disease). The sub-folder unknown_crop/ holds
// leaves of crops the model does not know, which the bot must not answer with a diagnosis. Other
// sub-folders whose name is not a model class (not_a_leaf/, say) hold photos the model must reject
// as not a leaf.
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

// UnknownCropFolder is the sub-folder of leaves of crops the model does not know (it may hold
// sub-folders of its own, one per crop say).
const UnknownCropFolder = "unknown_crop"

// Outcome is the model's answer for one photo.
type Outcome struct {
	Probs       []float64 // every class, in the model's order (after temperature)
	Rejected    bool      // judged not a leaf
	UnknownCrop bool      // judged a leaf of a crop the model does not know
	Latency     time.Duration
}

// Verdict is what the bot replies to a photo.
type Verdict int

// The verdicts, in the order the bot decides them.
const (
	VerdictNotLeaf     Verdict = iota // refused as not a leaf
	VerdictUnknownCrop                // refused as a crop the model does not know
	VerdictUnsure                     // "not sure, retake the photo": top-1 below the threshold
	VerdictAnswered                   // a diagnosis: "X 87 %" (a disease or healthy)
)

// Verdict is the bot's reply to o when it answers from a top-1 probability of threshold: a photo
// that is not a leaf is refused as such even if its crop is unknown too.
func (o Outcome) Verdict(threshold float64) Verdict {
	switch {
	case o.Rejected:
		return VerdictNotLeaf
	case o.UnknownCrop:
		return VerdictUnknownCrop
	case len(o.Probs) == 0 || slices.Max(o.Probs) < threshold:
		return VerdictUnsure
	}
	return VerdictAnswered
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

// ClassReport is one class's figures: of its photos, and of the answers that name it.
type ClassReport struct {
	Class            string `json:"class"`
	Top1             Counts `json:"top1"`
	Top3             Counts `json:"top3"`
	CropTop1         Counts `json:"crop_top1"`
	CropTop3         Counts `json:"crop_top3"`
	FalseRejected    Counts `json:"false_rejected"`
	FalseUnknownCrop Counts `json:"false_unknown_crop"`
	Unsure           Counts `json:"unsure"`
	Answered         Counts `json:"answered"`
	// ConfidentWrong: of this class's photos the bot answered, those whose top-1 is another class.
	ConfidentWrong Counts `json:"confident_wrong"`
	// WrongWhenNamed: of the answers naming this class (photos of any class), the wrong ones:
	// how far a farmer can trust "this class, 87 %".
	WrongWhenNamed Counts `json:"wrong_when_named"`
}

// UnknownCropReport is what the bot replies to the leaves of unknown_crop/: every photo should be
// refused as an unknown crop (or at least not answered with a diagnosis).
type UnknownCropReport struct {
	Folder   string `json:"folder"`
	Photos   int    `json:"photos"`
	Refused  Counts `json:"refused"`  // refused as an unknown crop: the right reply
	NotLeaf  Counts `json:"not_leaf"` // refused as not a leaf
	Unsure   Counts `json:"unsure"`   // "not sure, retake the photo"
	Answered Counts `json:"answered"` // the bad outcome: a diagnosis of a crop the leaf is not
	// AnsweredDisease: the answers naming a disease rather than a healthy class (of all photos).
	AnsweredDisease Counts `json:"answered_disease"`
	// AnsweredAs counts the classes the answers named, most often first.
	AnsweredAs []ClassCount `json:"answered_as,omitempty"`
}

// ClassCount is a class and how many times something happened to it.
type ClassCount struct {
	Class string `json:"class"`
	N     int    `json:"n"`
}

// ReliabilityBin is one bar of the reliability diagram: the leaf photos whose top-1 confidence
// falls in [Lo, Hi) (the last bin includes 1), their mean confidence and their top-1 accuracy.
type ReliabilityBin struct {
	Lo         float64 `json:"lo"`
	Hi         float64 `json:"hi"`
	N          int     `json:"n"`
	Right      int     `json:"right"`
	Confidence float64 `json:"confidence"` // mean top-1 probability, 0 when N is 0
	Accuracy   float64 `json:"accuracy"`   // Right/N, 0 when N is 0
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
	Photos    int      `json:"photos"`
	Failed    []string `json:"failed,omitempty"` // paths that could not be read
	Threshold float64  `json:"threshold"`        // the bot answers from this top-1 probability
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
	ECEFloor ECEFloor `json:"ece_floor"`
	// Reliability is the ECE's bins, ECEBins of them (the reliability diagram).
	Reliability []ReliabilityBin `json:"reliability"`
	// What the bot replies to these leaves (each N is the leaf photos): a diagnosis, "not sure",
	// or a refusal as an unknown crop (a refusal as not a leaf is FalseRejected).
	Answered         Counts `json:"answered"`
	Unsure           Counts `json:"unsure"`
	FalseUnknownCrop Counts `json:"false_unknown_crop"`
	// ConfidentWrong: of the leaf photos the bot answered with a diagnosis (top-1 at or above the
	// threshold, not refused), those whose top-1 is wrong. N is Answered.Hits.
	ConfidentWrong Counts        `json:"confident_wrong"`
	PerClass       []ClassReport `json:"per_class"` // classes with photos or named by an answer, in model order
	Classes        []string      `json:"classes"`
	Confusion      [][]int       `json:"confusion"` // [true][predicted], model order
	// Over the photos of other folders but unknown_crop/:
	Rejected Counts        `json:"rejected"`
	Others   []OtherFolder `json:"others,omitempty"`
	// Over the photos of unknown_crop/, if there are any:
	UnknownCrop *UnknownCropReport `json:"unknown_crop,omitempty"`
	Latency     Latency            `json:"latency"`
}

// Crop is the crop part of a class id: "tomato" of "tomato__late_blight".
func Crop(class string) string {
	c, _, _ := strings.Cut(class, "__")
	return c
}

// Healthy tells a healthy class id ("tomato__healthy") from a disease.
func Healthy(class string) bool {
	_, d, _ := strings.Cut(class, "__")
	return d == "healthy"
}

// ECEBins is the number of equal-width confidence bins of the calibration error.
const ECEBins = 15

// Config is what Evaluate needs besides the photos.
type Config struct {
	Classes []string // the model's class ids, in its order
	// Threshold is the top-1 probability from which the bot answers with a diagnosis (serve's
	// --threshold); below it the bot says it is not sure.
	Threshold float64
	Workers   int // photos classified at once
}

// Evaluate runs classify over the samples on cfg.Workers workers (progress, if set, is called
// after each photo, from one goroutine at a time) and computes the report.
func Evaluate(ctx context.Context, samples []Sample, cfg Config, classify Classifier, progress func(done int)) (Report, error) {
	outcomes, errs := runAll(ctx, samples, classify, cfg.Workers, progress)
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}
	classes := cfg.Classes
	k := len(classes)
	r := Report{Photos: len(samples), Threshold: cfg.Threshold, Classes: classes, Confusion: make([][]int, k)}
	for i := range r.Confusion {
		r.Confusion[i] = make([]int, k)
	}
	per := make([]ClassReport, k)
	for i, c := range classes {
		per[i].Class = c
	}
	others := map[string]*OtherFolder{}
	var unknown *UnknownCropReport
	unknownAs := map[string]int{}
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
		verdict := o.Verdict(cfg.Threshold)
		if s.Class < 0 && s.Label == UnknownCropFolder {
			if unknown == nil {
				unknown = &UnknownCropReport{Folder: s.Label}
			}
			unknown.Photos++
			top := classes[rank(o.Probs, nil)[0]]
			unknown.Refused.add(verdict == VerdictUnknownCrop)
			unknown.NotLeaf.add(verdict == VerdictNotLeaf)
			unknown.Unsure.add(verdict == VerdictUnsure)
			unknown.Answered.add(verdict == VerdictAnswered)
			unknown.AnsweredDisease.add(verdict == VerdictAnswered && !Healthy(top))
			if verdict == VerdictAnswered {
				unknownAs[top]++
			}
			continue
		}
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
			{&r.FalseRejected, &pc.FalseRejected, verdict == VerdictNotLeaf},
			{&r.FalseUnknownCrop, &pc.FalseUnknownCrop, verdict == VerdictUnknownCrop},
			{&r.Unsure, &pc.Unsure, verdict == VerdictUnsure},
			{&r.Answered, &pc.Answered, verdict == VerdictAnswered},
		} {
			pair.all.add(pair.hit)
			pair.one.add(pair.hit)
		}
		if verdict == VerdictAnswered {
			r.ConfidentWrong.add(!top1)
			pc.ConfidentWrong.add(!top1)
			per[ranked[0]].WrongWhenNamed.add(!top1)
		}
		r.Confusion[s.Class][ranked[0]]++
		confs = append(confs, o.Probs[ranked[0]])
		rights = append(rights, top1)
	}
	r.ECE, r.ECEFloor = calibration(confs, rights)
	r.Reliability = reliability(confs, rights)
	for _, c := range []*Counts{&r.Top1, &r.Top3, &r.CropTop1, &r.CropTop3, &r.FalseRejected,
		&r.FalseUnknownCrop, &r.Unsure, &r.Answered, &r.ConfidentWrong, &r.Rejected} {
		c.finish()
	}
	for i := range per {
		if per[i].Top1.N == 0 && per[i].WrongWhenNamed.N == 0 {
			continue
		}
		for _, c := range []*Counts{&per[i].Top1, &per[i].Top3, &per[i].CropTop1, &per[i].CropTop3, &per[i].FalseRejected,
			&per[i].FalseUnknownCrop, &per[i].Unsure, &per[i].Answered, &per[i].ConfidentWrong, &per[i].WrongWhenNamed} {
			c.finish()
		}
		r.PerClass = append(r.PerClass, per[i])
	}
	for _, name := range slices.Sorted(maps.Keys(others)) {
		others[name].Rejected.finish()
		r.Others = append(r.Others, *others[name])
	}
	if unknown != nil {
		for _, c := range []*Counts{&unknown.Refused, &unknown.NotLeaf, &unknown.Unsure, &unknown.Answered, &unknown.AnsweredDisease} {
			c.finish()
		}
		for _, name := range slices.Sorted(maps.Keys(unknownAs)) {
			unknown.AnsweredAs = append(unknown.AnsweredAs, ClassCount{name, unknownAs[name]})
		}
		slices.SortStableFunc(unknown.AnsweredAs, func(a, b ClassCount) int { return b.N - a.N })
		r.UnknownCrop = unknown
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

// bin is the ECE bin of a confidence.
func bin(c float64) int { return max(0, min(int(c*ECEBins), ECEBins-1)) }

// ece is the expected calibration error of top-1 confidences and whether each top-1 was right:
// the photo-weighted mean over ECEBins equal-width bins of |accuracy - mean confidence|.
func ece(confs []float64, rights []bool) float64 {
	var conf, acc [ECEBins]float64
	for i, c := range confs {
		b := bin(c)
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

// reliability returns the ECEBins bins of the ECE with their counts, mean confidence and accuracy.
func reliability(confs []float64, rights []bool) []ReliabilityBin {
	bins := make([]ReliabilityBin, ECEBins)
	for b := range bins {
		bins[b].Lo, bins[b].Hi = float64(b)/ECEBins, float64(b+1)/ECEBins
	}
	for i, c := range confs {
		b := &bins[bin(c)]
		b.N++
		b.Confidence += c
		if rights[i] {
			b.Right++
		}
	}
	for b := range bins {
		if n := bins[b].N; n > 0 {
			bins[b].Confidence /= float64(n)
			bins[b].Accuracy = float64(bins[b].Right) / float64(n)
		}
	}
	return bins
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
