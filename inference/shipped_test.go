package inference_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/locales"
)

// shippedModel is the trained model `serve` uses by default.
func shippedModel(t *testing.T) *inference.Model {
	t.Helper()
	m, err := inference.Load(context.Background(), filepath.Join(testenv.Root(t), "models", "cropshield-v1.onnx"),
		inference.Options{LibraryPath: testenv.ORTLib(t), Device: inference.DeviceCPU})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

// TestShippedModelContract: the shipped model loads through the contract with 25 classes, each
// with texts in every language, a not-a-leaf output and a fitted temperature.
func TestShippedModelContract(t *testing.T) {
	info := shippedModel(t).Info()
	if len(info.Classes) != 25 || !strings.HasPrefix(info.Version, "cropshield-") {
		t.Fatalf("model %s with %d classes", info.Version, len(info.Classes))
	}
	loc, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := loc.CheckClasses(info.Classes); err != nil {
		t.Fatal(err)
	}
	if info.NotLeafThreshold <= 0 || info.Temperature <= 0 || info.Temperature == 1 {
		t.Errorf("not_leaf threshold %v, temperature %v: want a rejection output and a fitted temperature", info.NotLeafThreshold, info.Temperature)
	}
}

// TestShippedModelOnHeldOutLabPhotos classifies the first two held-out lab photos of every class
// (models/train/splits.json, never trained on) and expects at most three mistakes in fifty.
func TestShippedModelOnHeldOutLabPhotos(t *testing.T) {
	datasets := testenv.Datasets(t)
	m := shippedModel(t)
	raw, err := os.ReadFile(filepath.Join(testenv.Root(t), "models", "train", "splits.json"))
	if err != nil {
		t.Fatal(err)
	}
	var splits struct {
		LabTest []string `json:"lab-test"`
	}
	if err := json.Unmarshal(raw, &splits); err != nil {
		t.Fatal(err)
	}
	perClass := map[string]int{}
	wrong, total, rejected := 0, 0, 0
	for _, rel := range splits.LabTest {
		class := filepath.Base(filepath.Dir(rel))
		if perClass[class] == 2 {
			continue
		}
		perClass[class]++
		data, err := os.ReadFile(filepath.Join(datasets, rel))
		if err != nil {
			t.Fatal(err)
		}
		res, err := m.Classify(context.Background(), data)
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		total++
		if !res.IsLeaf {
			rejected++
		}
		if res.Top[0].ID != class {
			wrong++
			t.Logf("%s: %s (%.0f%%)", rel, res.Top[0].ID, 100*res.Top[0].Prob)
		}
	}
	if len(perClass) != 25 || total != 50 {
		t.Fatalf("sampled %d photos of %d classes, want 50 of 25", total, len(perClass))
	}
	if wrong > 3 || rejected > 1 {
		t.Errorf("%d of %d held-out lab photos misclassified, %d rejected as not a leaf", wrong, total, rejected)
	}
}
