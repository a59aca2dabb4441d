package inference

import (
	"image"
	"slices"

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
	start := len(dst)
	dst = slices.Grow(dst, 3*n*n)[:start+3*n*n]
	out := dst[start:]
	if box.Side >= float64(n) {
		info.tensorInto(out, sourceOf(img), float64(b.Min.X)+box.X, float64(b.Min.Y)+box.Y, box.Side, 1)
		return dst, box
	}
	// A photo smaller than the model's input: crop, then enlarge smoothly.
	r := image.Rect(int(box.X), int(box.Y), int(box.X+box.Side+0.5), int(box.Y+box.Side+0.5)).Add(b.Min)
	up := imaging.Resize(imaging.Crop(img, r), n, n, imaging.Linear)
	emit := info.tensorEmit(out, 1)
	row := make([]float32, 3*n)
	for y := range n {
		nrgbaSource{up}.row(y, 0, n, row)
		emit(y, row)
	}
	return dst, box
}

// tensorInto area-averages the square (x, y, side) of src, a photo stored under EXIF orientation
// o, into out (3 x InputSize x InputSize floats): the model's input, upright. This is the whole
// preprocessing in one pass from the decoded pixels: no intermediate image.
func (info Info) tensorInto(out []float32, src rowSource, x, y, side float64, o int) {
	n := info.InputSize
	resampleArea(src, x, y, side, side, n, n, info.tensorEmit(out, o))
}

// tensorEmit returns an emit function (see resampleArea) that normalizes rows of RGB in 0..255,
// stored under orientation o, into the planes of out.
func (info Info) tensorEmit(out []float32, o int) func(int, []float32) {
	n := info.InputSize
	plane := n * n
	var scale, shift [3]float32
	for c := range 3 {
		scale[c] = 1 / (255 * info.Std[c])
		shift[c] = info.Mean[c] / info.Std[c]
	}
	r, g, b := out[:plane:plane], out[plane:2*plane:2*plane], out[2*plane:3*plane:3*plane]
	if o <= 1 || o > 8 {
		return func(y int, rgb []float32) {
			r, g, b := r[y*n:(y+1)*n], g[y*n:(y+1)*n], b[y*n:(y+1)*n]
			for i := range n {
				p := rgb[3*i : 3*i+3 : 3*i+3]
				r[i] = p[0]*scale[0] - shift[0]
				g[i] = p[1]*scale[1] - shift[1]
				b[i] = p[2]*scale[2] - shift[2]
			}
		}
	}
	return func(y int, rgb []float32) {
		for i := range n {
			ux, uy := uprightAt(o, i, y, n, n)
			k := uy*n + ux
			p := rgb[3*i : 3*i+3 : 3*i+3]
			r[k] = p[0]*scale[0] - shift[0]
			g[k] = p[1]*scale[1] - shift[1]
			b[k] = p[2]*scale[2] - shift[2]
		}
	}
}
