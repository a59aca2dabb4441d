package inference

import (
	"cmp"
	"encoding/binary"
	"image"
	"math"
	"slices"
)

// The fixed-point resampler: resampleArea's box filter for opaque *image.NRGBA sources (what
// libjpeg-turbo and the streaming PNG decoder give), with the four channels of a pixel side by side
// in one uint64 (16 bits each, SWAR) and weights in 1/256. A tap is one multiply and one add for
// all channels at once, where the float resampler converts every byte to a float and multiplies
// each channel. Each pass rounds to whole levels; the result is within a level or two of the float
// resampler's (TestFixedMatchesFloatResampler).

// lanes holds a pixel's four 8-bit channels in the low bytes of four 16-bit lanes.
const (
	laneMask  = 0x00FF_00FF_00FF_00FF
	laneRound = 0x0080_0080_0080_0080 // half of 256 in every lane
)

// spread puts the RGBA bytes of a pixel into the lanes: r in bits 0-7, b 16-23, g 32-39, a 48-55.
func spread(p []byte) uint64 {
	v := uint64(binary.LittleEndian.Uint32(p))
	return v&0x00FF_00FF | (v&0xFF00_FF00)<<24
}

// unspread is spread's inverse for lanes that hold bytes: the RGBA bytes, little-endian.
func unspread(v uint64) uint32 { return uint32(v&0x00FF_00FF | v>>24&0xFF00_FF00) }

// toFixed gives areaTaps integer weights that sum to exactly 256 for every destination pixel,
// so that no lane overflows (255 * 256 < 65536).
func toFixed(t taps[float32]) taps[uint64] {
	f := taps[uint64]{first: t.first, count: t.count, off: t.off, w: make([]uint64, len(t.w))}
	var rem []float64
	var order []int
	for i := range t.first {
		ws := t.w[t.off[i] : t.off[i]+t.count[i]]
		out := f.w[t.off[i] : t.off[i]+t.count[i]]
		var sum float64
		for _, w := range ws {
			sum += float64(w)
		}
		// Largest-remainder rounding: each weight rounded down, then the units still missing
		// from 256 to the weights that lost the most. Every weight stays within one unit of its
		// share, never negative, and they add up to exactly 256 (giving the whole error to the
		// largest tap made it negative from about a 30x reduction: a grey overlay).
		rem, order = rem[:0], order[:0]
		total := 0
		for k, w := range ws {
			v := float64(w) / sum * 256
			fl := math.Floor(v)
			out[k] = uint64(fl)
			total += int(fl)
			rem = append(rem, v-fl)
			order = append(order, k)
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(rem[b], rem[a]) })
		for _, k := range order[:max(0, min(256-total, len(order)))] {
			out[k]++
		}
	}
	return f
}

// resampleFixed is resampleArea for an opaque NRGBA source: it reduces the rectangle (x, y, w, h)
// of src (in src's coordinates, fractional allowed, inside src and at least dw x dh) to dw x dh
// pixels and calls emit once per destination row with that row's pixels in lanes, each channel
// in 8.8 fixed point (level * 256, before the last rounding). Bands of rows run in parallel.
func resampleFixed(src *image.NRGBA, x, y, w, h float64, dw, dh int, emit func(row int, px []uint64)) {
	cols, rows := toFixed(areaTaps(x, w, dw)), toFixed(areaTaps(y, h, dh))
	cx0 := int(cols.first[0])
	cx1 := int(cols.first[dw-1] + cols.count[dw-1])
	// Where no destination pixel spans more than two source columns (a factor up to about 2, as
	// 1280 to 1024), each is one pair of taps: the common case without the general loop.
	var pairs []tapPair
	if slices.Max(cols.count) <= 2 {
		pairs = make([]tapPair, dw)
		for j := range pairs {
			f, o := cols.first[j]-int32(cx0), cols.off[j]
			pairs[j] = tapPair{i0: f, i1: f, w0: cols.w[o]}
			if cols.count[j] == 2 {
				pairs[j].i1, pairs[j].w1 = f+1, cols.w[o+1]
			}
		}
	}
	parallel(dh, int(w*h)/(1<<16), func(lo, hi int) {
		acc := make([]uint64, dw)
		line := make([]uint64, cx1-cx0) // the source row's pixels cx0..cx1-1, spread
		// The horizontally reduced source row last computed: consecutive destination rows share
		// at most their boundary source row.
		last, spare := make([]uint64, dw), make([]uint64, dw)
		lastY := -1
		reduce := func(sy int) []uint64 {
			if sy == lastY {
				return last
			}
			off := (sy-src.Rect.Min.Y)*src.Stride + 4*(cx0-src.Rect.Min.X)
			row := src.Pix[off : off+4*len(line)]
			for i := range line {
				line[i] = spread(row[4*i : 4*i+4 : 4*i+4])
			}
			if pairs != nil {
				for j, t := range pairs {
					a := line[t.i0]*t.w0 + line[t.i1]*t.w1
					spare[j] = (a + laneRound) >> 8 & laneMask
				}
				last, spare, lastY = spare, last, sy
				return last
			}
			for j := range spare {
				f, o := int(cols.first[j])-cx0, int(cols.off[j])
				var a uint64
				switch cols.count[j] {
				case 1:
					a = line[f] * cols.w[o]
				case 2:
					a = line[f]*cols.w[o] + line[f+1]*cols.w[o+1]
				default:
					for k, wt := range cols.w[o : o+int(cols.count[j])] {
						a += line[f+k] * wt
					}
				}
				spare[j] = (a + laneRound) >> 8 & laneMask
			}
			last, spare, lastY = spare, last, sy
			return last
		}
		sumRows(rows, lo, hi, acc, reduce, emit)
	})
}

// tapPair is a destination pixel of at most two source pixels (w1 0 for one).
type tapPair struct {
	i0, i1 int32
	w0, w1 uint64
}

// pack rounds a pixel's 8.8 lanes to bytes: r, g, b, a in the low 32 bits, little-endian.
func pack(v uint64) uint32 { return unspread((v + laneRound) >> 8 & laneMask) }

// intoNRGBAFixed returns an emit function for resampleFixed that writes the rows of a w x h image
// stored under EXIF orientation o into the upright img (alpha is the source's: opaque).
func intoNRGBAFixed(img *image.NRGBA, o, w, h int) func(int, []uint64) {
	if o <= 1 || o > 8 {
		return func(y int, px []uint64) {
			p := img.Pix[img.PixOffset(img.Rect.Min.X, img.Rect.Min.Y+y):]
			p = p[:4*len(px)]
			for i, v := range px {
				binary.LittleEndian.PutUint32(p[4*i:4*i+4:4*i+4], pack(v))
			}
		}
	}
	return func(y int, px []uint64) {
		for x, v := range px {
			ux, uy := uprightAt(o, x, y, w, h)
			binary.LittleEndian.PutUint32(img.Pix[img.PixOffset(img.Rect.Min.X+ux, img.Rect.Min.Y+uy):], pack(v))
		}
	}
}
