package inference

import (
	"image"

	"github.com/disintegration/imaging"
)

// CropBox is the square of the image, in its own pixels, that the model sees: the center crop
// that remains after the shorter side is resized to ResizeShorter and cropped to InputSize.
type CropBox struct{ X, Y, Side float64 }

// CropBoxFor computes the crop box of a w x h image.
func (info Info) CropBoxFor(w, h int) CropBox {
	side := float64(min(w, h)) * float64(info.InputSize) / float64(info.ResizeShorter)
	return CropBox{X: (float64(w) - side) / 2, Y: (float64(h) - side) / 2, Side: side}
}

// Tensor preprocesses an image into the model's input layout: RGB, CHW, normalized with the
// model's mean and std, InputSize x InputSize. It appends to dst (which may be nil) so that a
// batch can be built in one slice.
func (info Info) Tensor(dst []float32, img image.Image) ([]float32, CropBox) {
	b := img.Bounds()
	box := info.CropBoxFor(b.Dx(), b.Dy())
	n := info.InputSize
	plane := n * n
	start := len(dst)
	dst = append(dst, make([]float32, 3*plane)...)
	out := dst[start:]
	var scale, shift [3]float32
	for c := range 3 {
		scale[c] = 1 / (255 * info.Std[c])
		shift[c] = info.Mean[c] / info.Std[c]
	}
	emit := func(y int, rgb []float32) {
		r, g, bl := out[y*n:(y+1)*n], out[plane+y*n:plane+(y+1)*n], out[2*plane+y*n:2*plane+(y+1)*n]
		for i := range n {
			p := rgb[3*i : 3*i+3 : 3*i+3]
			r[i] = p[0]*scale[0] - shift[0]
			g[i] = p[1]*scale[1] - shift[1]
			bl[i] = p[2]*scale[2] - shift[2]
		}
	}
	if box.Side >= float64(n) {
		resampleArea(sourceOf(img), float64(b.Min.X)+box.X, float64(b.Min.Y)+box.Y, box.Side, box.Side, n, n, emit)
		return dst, box
	}
	// A photo smaller than the model's input: crop, then enlarge smoothly.
	r := image.Rect(int(box.X), int(box.Y), int(box.X+box.Side+0.5), int(box.Y+box.Side+0.5)).Add(b.Min)
	up := imaging.Resize(imaging.Crop(img, r), n, n, imaging.Linear)
	row := make([]float32, 3*n)
	for y := range n {
		nrgbaSource{up}.row(y, 0, n, row)
		emit(y, row)
	}
	return dst, box
}
