package inference

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestParseInfo(t *testing.T) {
	good := func() map[string]string {
		return map[string]string{
			"classes": `["a__x","b__y"]`, "mean": "[0.5,0.5,0.5]", "std": "[0.25,0.25,0.25]",
			"input_size": "224", "resize_shorter": "256", "model_version": "v1",
		}
	}
	info, err := parseInfo(good())
	if err != nil || info.Version != "v1" || len(info.Classes) != 2 || info.Temperature != 1 || info.Std[2] != 0.25 {
		t.Fatalf("good metadata: %+v, %v", info, err)
	}
	for _, tc := range []struct {
		name    string
		edit    func(map[string]string)
		mention string
	}{
		{"no classes", func(m map[string]string) { delete(m, "classes") }, `"classes" missing`},
		{"one class", func(m map[string]string) { m["classes"] = `["a"]` }, "at least 2"},
		{"empty class id", func(m map[string]string) { m["classes"] = `["a",""]` }, "empty id"},
		{"mean of 2", func(m map[string]string) { m["mean"] = "[0.5,0.5]" }, "mean must be"},
		{"zero std", func(m map[string]string) { m["std"] = "[0.2,0,0.2]" }, "std must be positive"},
		{"input size text", func(m map[string]string) { m["input_size"] = "big" }, "input_size must be"},
		{"crop larger than resize", func(m map[string]string) { m["resize_shorter"] = "200" }, "resize_shorter 200 < input_size 224"},
		{"no version", func(m map[string]string) { delete(m, "model_version") }, `"model_version" missing`},
		{"bad temperature", func(m map[string]string) { m["temperature"] = "-1" }, "temperature"},
		{"not_leaf threshold 0", func(m map[string]string) { m["not_leaf_threshold"] = "0" }, "not_leaf_threshold must be a number in (0, 1]"},
		{"not_leaf threshold NaN", func(m map[string]string) { m["not_leaf_threshold"] = "NaN" }, "not_leaf_threshold must be"},
		{"unknown_crop threshold 0", func(m map[string]string) { m["unknown_crop_threshold"] = "0" }, "unknown_crop_threshold must be a number in (0, 1]"},
		{"unknown_crop threshold over 1", func(m map[string]string) { m["unknown_crop_threshold"] = "1.5" }, "unknown_crop_threshold must be"},
		{"unknown_crop threshold text", func(m map[string]string) { m["unknown_crop_threshold"] = "high" }, `unknown_crop_threshold must be a number in (0, 1], not "high"`},
		{"unknown_crop threshold NaN", func(m map[string]string) { m["unknown_crop_threshold"] = "NaN" }, "unknown_crop_threshold must be"},
		{"unknown_crop threshold empty", func(m map[string]string) { m["unknown_crop_threshold"] = "" }, "unknown_crop_threshold must be"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := good()
			tc.edit(m)
			_, err := parseInfo(m)
			if !errors.Is(err, ErrContract) || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("err = %v, want ErrContract mentioning %q", err, tc.mention)
			}
		})
	}
	m := good()
	m["temperature"] = "1.5"
	if info, err := parseInfo(m); err != nil || info.Temperature != 1.5 {
		t.Errorf("temperature 1.5: %v %v", info.Temperature, err)
	}
	if info.NotLeafThreshold != 0 || info.UnknownCropThreshold != 0 {
		t.Errorf("thresholds without the keys: %v %v, want 0 0", info.NotLeafThreshold, info.UnknownCropThreshold)
	}
	m["unknown_crop_threshold"], m["not_leaf_threshold"] = "1", "0.25"
	if info, err := parseInfo(m); err != nil || info.UnknownCropThreshold != 1 || info.NotLeafThreshold != 0.25 {
		t.Errorf("thresholds 1 and 0.25: %v %v %v", info.UnknownCropThreshold, info.NotLeafThreshold, err)
	}
}

func TestSoftmaxAndTop(t *testing.T) {
	p := Softmax([]float32{1, 3, 2, 3}, 1)
	var sum float64
	for _, v := range p {
		sum += v
	}
	if sum < 0.999999 || sum > 1.000001 {
		t.Fatalf("softmax sums to %v", sum)
	}
	if got := TopClasses(p, 3); got[0] != 1 || got[1] != 3 || got[2] != 2 {
		t.Errorf("top = %v, want [1 3 2] (ties keep the lower index first)", got)
	}
	hot := Softmax([]float32{0, 4}, 0.5)
	cool := Softmax([]float32{0, 4}, 2)
	if !(hot[1] > cool[1]) {
		t.Errorf("a higher temperature must soften: %v vs %v", hot, cool)
	}
	if TopClasses([]float64{0.5, 0.5}, 3)[1] != 1 || len(TopClasses([]float64{0.5, 0.5}, 3)) != 2 {
		t.Error("TopClasses with k > len")
	}
}

func TestVersionAtLeast(t *testing.T) {
	for _, tc := range []struct {
		have string
		want bool
	}{{"1.30.0", true}, {"1.24.0", true}, {"1.24", false}, {"1.23.2", false}, {"2.0.0", true}, {"garbage", false}} {
		if got := versionAtLeast(tc.have, MinRuntimeVersion); got != tc.want {
			t.Errorf("versionAtLeast(%q) = %v", tc.have, got)
		}
	}
}

func TestNormalizeCAMIgnoresNonFinite(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	hm := normalizeCAM([]float32{nan, inf, -2, 1, 4}, 5, 1)
	want := []float32{0, 0, 0, 0.25, 1}
	for i := range want {
		if hm.V[i] != want[i] {
			t.Fatalf("normalizeCAM = %v, want %v", hm.V, want)
		}
	}
}
