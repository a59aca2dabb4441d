package bot

import (
	"math"
	"slices"
	"testing"

	"github.com/cropshield/cropshield/store"
)

// c is a candidate.
func c(class string, p float64) store.Candidate { return store.Candidate{Class: class, Prob: p} }

func TestWithinCrop(t *testing.T) {
	scores := func(kv ...any) map[string]float64 {
		m := map[string]float64{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1].(float64)
		}
		return m
	}
	tests := []struct {
		name      string
		a         store.Analysis
		crop      string
		wantTop   []store.Candidate
		mismatch  string // the other crop named, "" for none
		otherCrop bool   // OtherCrop after
	}{
		{"re-normalized within maize",
			store.Analysis{Scores: scores("corn__common_rust", 0.3, "corn__healthy", 0.1, "tomato__late_blight", 0.6)}, "corn",
			[]store.Candidate{c("corn__common_rust", 0.75), c("corn__healthy", 0.25)}, "", false},
		{"at most three",
			store.Analysis{Scores: scores("corn__a", 0.4, "corn__b", 0.3, "corn__c", 0.2, "corn__d", 0.1)}, "corn",
			[]store.Candidate{c("corn__a", 0.4), c("corn__b", 0.3), c("corn__c", 0.2)}, "", false},
		{"clearly another crop",
			store.Analysis{Scores: scores("corn__common_rust", 0.04, "tomato__late_blight", 0.9, "tomato__healthy", 0.06)}, "corn",
			nil, "tomato", false},
		{"stated crop small but the other not clear: within the stated crop, not re-normalized",
			store.Analysis{Scores: scores("corn__common_rust", 0.04, "corn__healthy", 0.01, "tomato__late_blight", 0.7, "apple__scab", 0.25)}, "corn",
			[]store.Candidate{c("corn__common_rust", 0.04), c("corn__healthy", 0.01)}, "", false},
		{"stated crop at the limit (5%): within it, not re-normalized",
			store.Analysis{Scores: scores("corn__common_rust", 0.05, "tomato__late_blight", 0.95)}, "corn",
			[]store.Candidate{c("corn__common_rust", 0.05)}, "", false},
		{"stated crop under 20%: not re-normalized",
			store.Analysis{Scores: scores("corn__common_rust", 0.1, "corn__healthy", 0.05, "tomato__late_blight", 0.45, "apple__scab", 0.4)}, "corn",
			[]store.Candidate{c("corn__common_rust", 0.1), c("corn__healthy", 0.05)}, "", false},
		{"stated crop at 20%: re-normalized",
			store.Analysis{Scores: scores("corn__common_rust", 0.15, "corn__healthy", 0.05, "tomato__late_blight", 0.4, "apple__scab", 0.4)}, "corn",
			[]store.Candidate{c("corn__common_rust", 0.75), c("corn__healthy", 0.25)}, "", false},
		{"a crop of one class is never re-normalized (it would always be 100%)",
			store.Analysis{Scores: scores("orange__huanglongbing", 0.3, "grape__black_rot", 0.4, "apple__scab", 0.3)}, "orange",
			[]store.Candidate{c("orange__huanglongbing", 0.3)}, "", false},
		{"unknown-crop verdict overridden",
			store.Analysis{OtherCrop: true, Scores: scores("corn__common_rust", 0.4, "corn__healthy", 0.1, "tomato__late_blight", 0.5)}, "corn",
			[]store.Candidate{c("corn__common_rust", 0.8), c("corn__healthy", 0.2)}, "", false},
		{"old record: within its top-3, not re-normalized",
			store.Analysis{Top: []store.Candidate{c("tomato__late_blight", 0.5), c("corn__common_rust", 0.3), c("corn__healthy", 0.1)}}, "corn",
			[]store.Candidate{c("corn__common_rust", 0.3), c("corn__healthy", 0.1)}, "", false},
		{"old record without the crop in its top-3: as it was",
			store.Analysis{Top: []store.Candidate{c("tomato__late_blight", 0.9)}, OtherCrop: true}, "corn",
			[]store.Candidate{c("tomato__late_blight", 0.9)}, "", true},
		{"no crop stated: as it was",
			store.Analysis{Top: []store.Candidate{c("tomato__late_blight", 0.9)}, Scores: scores("tomato__late_blight", 0.9, "corn__healthy", 0.1)}, "",
			[]store.Candidate{c("tomato__late_blight", 0.9)}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := withinCrop(tt.a, tt.crop)
			if tt.mismatch != "" {
				if !o.mismatch || o.other.crop != tt.mismatch {
					t.Fatalf("outcome %+v, want a mismatch with %s", o, tt.mismatch)
				}
				return
			}
			if o.mismatch {
				t.Fatalf("a mismatch with %+v, want none", o.other)
			}
			near := func(x, y store.Candidate) bool { return x.Class == y.Class && math.Abs(x.Prob-y.Prob) < 1e-9 }
			if !slices.EqualFunc(o.a.Top, tt.wantTop, near) || o.a.OtherCrop != tt.otherCrop {
				t.Errorf("top %v other crop %v, want %v %v", o.a.Top, o.a.OtherCrop, tt.wantTop, tt.otherCrop)
			}
		})
	}
}

func TestCropDoubt(t *testing.T) {
	tests := []struct {
		name string
		a    store.Analysis
		want []string
	}{
		{"sure of one crop (66%)", store.Analysis{Scores: map[string]float64{"corn__a": 0.66, "tomato__a": 0.34}}, nil},
		{"between two", store.Analysis{Scores: map[string]float64{"corn__a": 0.5, "tomato__a": 0.4, "apple__a": 0.04, "grape__a": 0.06}}, []string{"corn", "tomato", "grape"}},
		{"at most four", store.Analysis{Scores: map[string]float64{"a__x": 0.3, "b__x": 0.2, "c__x": 0.2, "d__x": 0.15, "e__x": 0.15}}, []string{"a", "b", "c", "d"}},
		{"always two", store.Analysis{Scores: map[string]float64{"a__x": 0.6, "b__x": 0.01, "c__x": 0.39}}, []string{"a", "c"}},
		{"not a leaf", store.Analysis{Rejected: true, Scores: map[string]float64{"corn__a": 0.5, "tomato__a": 0.5}}, nil},
		{"unknown crop", store.Analysis{OtherCrop: true, Scores: map[string]float64{"corn__a": 0.5, "tomato__a": 0.5}}, nil},
		{"no scores (old record)", store.Analysis{Top: []store.Candidate{c("corn__a", 0.5)}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cropDoubt(tt.a, defaultClearCropShare); !slices.Equal(got, tt.want) {
				t.Errorf("cropDoubt = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUnknownCropChoices(t *testing.T) {
	tests := []struct {
		name string
		a    store.Analysis
		want []string
	}{
		{"unknown crop: the likely crops", store.Analysis{OtherCrop: true, Scores: map[string]float64{"corn__a": 0.5, "tomato__a": 0.4, "apple__a": 0.04, "grape__a": 0.06}}, []string{"corn", "tomato", "grape"}},
		{"unknown crop: at least two", store.Analysis{OtherCrop: true, Scores: map[string]float64{"a__x": 0.6, "b__x": 0.01, "c__x": 0.39}}, []string{"a", "c"}},
		{"unknown crop: at most four", store.Analysis{OtherCrop: true, Scores: map[string]float64{"a__x": 0.3, "b__x": 0.2, "c__x": 0.2, "d__x": 0.15, "e__x": 0.15}}, []string{"a", "b", "c", "d"}},
		{"a known crop", store.Analysis{Scores: map[string]float64{"corn__a": 0.5, "tomato__a": 0.5}}, nil},
		{"not a leaf", store.Analysis{Rejected: true, OtherCrop: true, Scores: map[string]float64{"corn__a": 0.5, "tomato__a": 0.5}}, nil},
		{"no scores (old record)", store.Analysis{OtherCrop: true, Top: []store.Candidate{c("corn__a", 0.5)}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unknownCropChoices(tt.a); !slices.Equal(got, tt.want) {
				t.Errorf("unknownCropChoices = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestASCIIDigits(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"2", "2"}, {"২", "2"}, {"३", "3"}, {"১০", "10"}, {"٤", "4"}, {"٠", "0"}, {"፩", "፩"}, {"maize", "maize"},
	} {
		if got := asciiDigits(tc.in); got != tc.want {
			t.Errorf("asciiDigits(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
