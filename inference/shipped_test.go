package inference_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/locales"
)

// TestShippedModelContract: the shipped model loads through the contract with 28 classes, each
// with texts in every language, a not-a-leaf and an unknown-crop output and a fitted temperature.
func TestShippedModelContract(t *testing.T) {
	info := testenv.LoadShipped(t).Info()
	if len(info.Classes) != 28 || !strings.HasPrefix(info.Version, "cropshield-") {
		t.Fatalf("model %s with %d classes", info.Version, len(info.Classes))
	}
	loc, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := loc.CheckClasses(info.Classes); err != nil {
		t.Fatal(err)
	}
	if info.NotLeafThreshold <= 0 || info.UnknownCropThreshold <= 0 || info.Temperature <= 0 || info.Temperature == 1 {
		t.Errorf("not_leaf threshold %v, unknown_crop threshold %v, temperature %v: want both refusal outputs and a fitted temperature",
			info.NotLeafThreshold, info.UnknownCropThreshold, info.Temperature)
	}
}

// TestShippedModelOnHeldOutPhotos classifies held-out photos the model never saw in training or
// calibration: two lab photos of each of the 25 lab classes, four bean field photos of each bean
// class (iBean's validation split), and chilli leaves (a crop the model must not diagnose).
func TestShippedModelOnHeldOutPhotos(t *testing.T) {
	datasets := testenv.Datasets(t)
	m := testenv.LoadShipped(t)
	for _, tc := range []struct {
		split    string
		perClass int
		photos   int
		// at most this many photos answered wrongly: another class, or (for chilli) a disease
		maxWrong, maxRefused int
		unknownCrop          bool
	}{
		{split: "lab-test", perClass: 2, photos: 50, maxWrong: 3, maxRefused: 1},
		{split: "bean-test", perClass: 4, photos: 12, maxWrong: 2, maxRefused: 1},
		{split: "chilli-test", perClass: 3, photos: 15, maxWrong: 2, unknownCrop: true},
	} {
		t.Run(tc.split, func(t *testing.T) {
			rels := testenv.HeldOut(t, tc.split, tc.perClass)
			if len(rels) != tc.photos {
				t.Fatalf("sampled %d photos, want %d", len(rels), tc.photos)
			}
			wrong, refused := 0, 0
			for _, rel := range rels {
				data, err := os.ReadFile(filepath.Join(datasets, rel))
				if err != nil {
					t.Fatal(err)
				}
				res, err := m.Classify(context.Background(), data)
				if err != nil {
					t.Fatalf("%s: %v", rel, err)
				}
				diagnosed := res.IsLeaf && res.KnownCrop
				if tc.unknownCrop {
					if diagnosed && res.Top[0].Prob >= 0.5 {
						wrong++
						t.Logf("%s: diagnosed %s (%.0f%%), unknown_crop %.2f", rel, res.Top[0].ID, 100*res.Top[0].Prob, res.UnknownCrop)
					}
					continue
				}
				if !diagnosed {
					refused++
					t.Logf("%s: refused (not_leaf %.2f, unknown_crop %.2f)", rel, res.NotLeaf, res.UnknownCrop)
				}
				if class := filepath.Base(filepath.Dir(rel)); res.Top[0].ID != class {
					wrong++
					t.Logf("%s: %s (%.0f%%)", rel, res.Top[0].ID, 100*res.Top[0].Prob)
				}
			}
			if wrong > tc.maxWrong || refused > tc.maxRefused {
				t.Errorf("%d of %d photos answered wrongly, %d refused (want at most %d and %d)", wrong, len(rels), refused, tc.maxWrong, tc.maxRefused)
			}
		})
	}
}
