package bot

import (
	"time"

	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/store"
)

// Verdict is the bot's decision about a photo's analysis: the handler words it in the chat's
// language, and `cropshield diagnose` prints it.
type Verdict struct {
	// Kind is one of the first six reply kinds (KindNotLeaf ... KindDiagnosis): the verdict, and
	// the Reply.Kind of the answer that words it.
	Kind ReplyKind
	// Analysis is the analysis the answer is about: within the stated crop where one is (its
	// top-3 re-normalized over that crop's classes where the model sees enough of the crop).
	Analysis store.Analysis
	// Crops: for KindCropQuestion the crops offered, best first ("another crop" follows
	// them); for KindCropMismatch the crop the photo shows.
	Crops []string
	// Share is, for KindCropMismatch, the share of the crop the photo shows.
	Share float64
}

// Decide is the bot's verdict on an analysis, crop the crop the farmer stated (a caption, /crop;
// "" for none). Zero fields of cfg take the handler's defaults (Threshold, ClearCropShare).
func Decide(cfg Config, a store.Analysis, crop string) Verdict {
	return cfg.withDefaults().decide(a, crop)
}

func (c Config) decide(a store.Analysis, crop string) Verdict {
	if crop == "" {
		if crops := c.questionChoices(a); len(crops) > 0 {
			return Verdict{Kind: KindCropQuestion, Analysis: a, Crops: crops}
		}
	}
	return c.settle(a, crop)
}

// settle is the verdict once no crop question is asked (or it was answered: crop the chosen
// crop, "" for "another crop").
func (c Config) settle(a store.Analysis, crop string) Verdict {
	if crop != "" {
		o := withinCrop(a, crop)
		if o.mismatch {
			return Verdict{Kind: KindCropMismatch, Analysis: a, Crops: []string{o.other.crop}, Share: o.other.share}
		}
		a = o.a
	}
	return Verdict{Kind: c.kindOf(a), Analysis: a}
}

// kindOf is the verdict on an analysis whose crop is settled: not a leaf takes precedence (a
// leaf of another crop is a leaf first), then an unknown crop, then the threshold.
func (c Config) kindOf(a store.Analysis) ReplyKind {
	switch {
	case a.Rejected:
		return KindNotLeaf
	case a.OtherCrop:
		return KindUnknownCrop
	case len(a.Top) == 0 || a.Top[0].Prob < c.Threshold:
		return KindUnsure
	}
	return KindDiagnosis
}

// NewAnalysis is the analysis of a model's result as the handler stores it and decides on it:
// every class's score (classes: the model's, in order), the top-3 and the refusals.
func NewAnalysis(res inference.Result, classes []string, hash, version string, now time.Time) store.Analysis {
	a := store.Analysis{PhotoHash: hash, ModelVersion: version, Overlay: res.Overlay,
		NotLeaf: res.NotLeaf, Rejected: !res.IsLeaf,
		// Not a leaf takes precedence: a leaf of another crop is a leaf first.
		UnknownCrop: res.UnknownCrop, OtherCrop: res.IsLeaf && !res.KnownCrop,
		InferenceMS: float64(res.Timings.Inference.Microseconds()) / 1000, CreatedAt: now}
	if len(res.Probs) == len(classes) {
		// Every class's score, so that an answer within a stated crop needs no second inference.
		a.Scores = make(map[string]float64, len(classes))
		for i, c := range classes {
			a.Scores[c] = res.Probs[i]
		}
	}
	for _, c := range res.Top {
		a.Top = append(a.Top, store.Candidate{Class: c.ID, Prob: c.Prob})
	}
	return a
}
