package inference_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/internal/testenv"
)

// reference is models/contract/reference.json, written by gen_contract_model.py from PyTorch.
type reference struct {
	ModelVersion string   `json:"model_version"`
	Classes      []string `json:"classes"`
	Tolerance    struct {
		Atol float64 `json:"atol"`
		Rtol float64 `json:"rtol"`
	} `json:"tolerance"`
	Cases []struct {
		Name   string `json:"name"`
		Inputs []struct {
			Kind  string  `json:"kind"`
			Phase float64 `json:"phase"`
			Path  string  `json:"path"`
		} `json:"inputs"`
		Logits []float64 `json:"logits"`
		CAM    []float64 `json:"cam"`
		Top3   []struct {
			Indices []int     `json:"indices"`
			Probs   []float64 `json:"probs"`
		} `json:"top3"`
	} `json:"cases"`
}

// formulaInput recomputes the reference's synthetic input exactly as the script documents it.
func formulaInput(side int, phase float64) []float32 {
	out := make([]float32, 3*side*side)
	for c := range 3 {
		for y := range side {
			for x := range side {
				// Each product converted explicitly so that no fused multiply-add changes a bit.
				arg := float64(0.013*float64(c+1)*float64(x)) + float64(0.021*float64(y))
				out[(c*side+y)*side+x] = float32(math.Sin(arg + phase))
			}
		}
	}
	return out
}

// TestContractModelMatchesPyTorch runs the committed contract model through ONNX Runtime from Go
// and compares logits, CAMs and top-3 with what PyTorch computed for the same inputs. The PNG
// case also checks Go's decode → crop → normalize path against the script's preprocessing.
func TestContractModelMatchesPyTorch(t *testing.T) {
	m := loadContract(t)
	dir := filepath.Dir(testenv.ContractModel(t))
	raw, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	info := m.Info()
	if ref.ModelVersion != info.Version || len(ref.Classes) != len(info.Classes) {
		t.Fatalf("reference is for %s with %d classes, model is %s with %d", ref.ModelVersion, len(ref.Classes), info.Version, len(info.Classes))
	}
	if len(ref.Cases) < 4 {
		t.Fatalf("reference has %d cases, want the formula, PNG and batch cases", len(ref.Cases))
	}
	close := func(got float32, want float64) bool {
		return math.Abs(float64(got)-want) <= ref.Tolerance.Atol+ref.Tolerance.Rtol*math.Abs(want)
	}
	for _, tc := range ref.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			var batch []float32
			for _, in := range tc.Inputs {
				switch in.Kind {
				case "formula":
					batch = append(batch, formulaInput(info.InputSize, in.Phase)...)
				case "png":
					data, err := os.ReadFile(filepath.Join(dir, in.Path))
					if err != nil {
						t.Fatal(err)
					}
					photo, err := inference.Decode(data, inference.Limits{})
					if err != nil {
						t.Fatal(err)
					}
					batch, _ = info.Tensor(batch, photo.Image)
				default:
					t.Fatalf("unknown input kind %q", in.Kind)
				}
			}
			n := len(tc.Inputs)
			out, err := m.Raw(context.Background(), batch, n)
			if err != nil {
				t.Fatal(err)
			}
			if out.NotLeaf != nil || out.UnknownCrop != nil {
				t.Errorf("the contract model has no not_leaf or unknown_crop output, got %v %v", out.NotLeaf, out.UnknownCrop)
			}
			logits, cams := out.Logits, out.CAM
			if len(logits) != len(tc.Logits) || len(cams) != len(tc.CAM) {
				t.Fatalf("got %d logits %d cam values, want %d %d", len(logits), len(cams), len(tc.Logits), len(tc.CAM))
			}
			bad := 0
			for i := range logits {
				if !close(logits[i], tc.Logits[i]) {
					bad++
					t.Errorf("logit %d = %g, want %g", i, logits[i], tc.Logits[i])
				}
			}
			for i := range cams {
				if !close(cams[i], tc.CAM[i]) && bad < 10 {
					bad++
					t.Errorf("cam %d = %g, want %g", i, cams[i], tc.CAM[i])
				}
			}
			preds, err := m.Predict(context.Background(), batch, n)
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range preds {
				want := tc.Top3[i]
				for j, c := range p.Top {
					if c.Index != want.Indices[j] || math.Abs(c.Prob-want.Probs[j]) > 1e-4 {
						t.Errorf("image %d top %d = %d (%.5f), want %d (%.5f)", i, j, c.Index, c.Prob, want.Indices[j], want.Probs[j])
					}
				}
				if len(p.Heatmaps) != len(p.Top) || p.Heatmaps[0].W != info.CAMWidth {
					t.Errorf("image %d: %d heat-maps of width %d", i, len(p.Heatmaps), p.Heatmaps[0].W)
				}
			}
		})
	}
}
