package synthpng_test

import (
	"bytes"
	"compress/zlib"
	"image/png"
	"testing"

	"github.com/cropshield/cropshield/internal/synthpng"
)

// TestWrittenFilesDecode: what Write and Huge produce is a PNG Go's decoder reads with the size,
// colours and pixels asked for.
func TestWrittenFilesDecode(t *testing.T) {
	rgb := [][]byte{{255, 0, 0, 0, 255, 0}, {0, 0, 255, 10, 20, 30}}
	for _, tc := range []struct {
		name        string
		data        []byte
		w, h        int
		x, y        int
		r, g, b, a8 uint32
	}{
		{"rgb", synthpng.Write(synthpng.Header{W: 2, H: 2, Depth: 8, Colour: 2}, nil, 2,
			func(i int) []byte { return rgb[i] }, zlib.DefaultCompression), 2, 2, 1, 1, 10, 20, 30, 255},
		{"huge", synthpng.Huge(1200, 900, "seed 1"), 1200, 900, 100, 5, 120, 80, 35, 255},
		{"huge, no comment", synthpng.Huge(300, 200, ""), 300, 200, 200, 7, 220, 220, 210, 255},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := png.Decode(bytes.NewReader(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if b := img.Bounds(); b.Dx() != tc.w || b.Dy() != tc.h {
				t.Fatalf("size %v, want %dx%d", b, tc.w, tc.h)
			}
			r, g, b, a := img.At(tc.x, tc.y).RGBA()
			if r>>8 != tc.r || g>>8 != tc.g || b>>8 != tc.b || a>>8 != tc.a8 {
				t.Errorf("pixel (%d,%d) = %d %d %d %d, want %d %d %d %d", tc.x, tc.y, r>>8, g>>8, b>>8, a>>8, tc.r, tc.g, tc.b, tc.a8)
			}
		})
	}
	if a, b := synthpng.Huge(64, 64, "a"), synthpng.Huge(64, 64, "b"); bytes.Equal(a, b) {
		t.Error("different comments gave the same file")
	}
	if n := len(synthpng.Huge(6316, 6316, "")); n > 400<<10 {
		t.Errorf("a 39.9-megapixel stripe PNG is %d bytes, want a small upload", n)
	}
}
