package imagecodec

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"io"
)

// PickFactor returns the largest integer k such that a w x h image averaged over k x k blocks
// (ceil(w/k) x ceil(h/k)) is still at least minLong on its longer side and minShort on its
// shorter one, each clamped to the image's own size.
func PickFactor(w, h, minLong, minShort int) int {
	long, short := max(w, h), min(w, h)
	minLong, minShort = max(1, min(minLong, long)), max(1, min(minShort, short))
	k := 1
	for c := 2; (long+c-1)/c >= minLong && (short+c-1)/c >= minShort; c++ {
		k = c
	}
	return k
}

// pngHeader is what DecodePNGReduced needs from the chunks before the image data.
type pngHeader struct {
	w, h, depth, colour int
	interlaced          bool
	palette             [256][3]uint8 // PLTE composited onto white with tRNS alpha
	paletteLen          int
	key                 []byte // tRNS colour key of a gray or RGB image, raw samples
	idat                []io.Reader
}

// DecodePNGReduced decodes a non-interlaced PNG of the checked size w x h while averaging each k x k block of pixels into
// one pixel, so that at most two rows of the full image are ever held. Transparency is
// composited onto white; the result is an opaque *image.NRGBA of ceil(w/k) x ceil(h/k), its
// pixels in pix when pix is large enough. Edge blocks average the pixels they have. An
// interlaced PNG returns ErrInterlaced, one whose IHDR declares another size ErrSizeMismatch.
func DecodePNGReduced(data []byte, w, h, k int, pix []byte) (*image.NRGBA, error) {
	hd, err := readPNGChunks(data)
	if err != nil {
		return nil, err
	}
	if hd.w != w || hd.h != h {
		return nil, fmt.Errorf("png: IHDR %dx%d, checked %dx%d: %w", hd.w, hd.h, w, h, ErrSizeMismatch)
	}
	if hd.interlaced {
		return nil, ErrInterlaced
	}
	k = max(k, 1)
	channels := map[int]int{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[hd.colour]
	bitsPP := channels * hd.depth
	rowBytes := (hd.w*bitsPP + 7) / 8
	bpp := max(1, bitsPP/8) // the filters' byte distance
	dw, dh := (hd.w+k-1)/k, (hd.h+k-1)/k
	n := 4 * dw * dh
	if cap(pix) < n {
		pix = make([]byte, n)
	}
	out := &image.NRGBA{Pix: pix[:n], Stride: 4 * dw, Rect: image.Rect(0, 0, dw, dh)}

	zr, err := zlib.NewReader(io.MultiReader(hd.idat...))
	if err != nil {
		return nil, fmt.Errorf("png: image data: %w", err)
	}
	defer func() { _ = zr.Close() }()
	cur, prev := make([]byte, 1+rowBytes), make([]byte, 1+rowBytes)
	rgb := make([]byte, 3*hd.w)
	acc := make([]uint32, 3*dw)
	for y := range hd.h {
		if _, err := io.ReadFull(zr, cur); err != nil {
			return nil, fmt.Errorf("png: row %d of %d: %w", y, hd.h, err)
		}
		if err := unfilter(cur[0], cur[1:], prev[1:], bpp); err != nil {
			return nil, fmt.Errorf("png: row %d: %w", y, err)
		}
		hd.toRGB(cur[1:], rgb)
		for x, bx := 0, 0; x < hd.w; bx++ {
			end := min(x+k, hd.w)
			a := acc[3*bx : 3*bx+3 : 3*bx+3]
			for ; x < end; x++ {
				a[0] += uint32(rgb[3*x])
				a[1] += uint32(rgb[3*x+1])
				a[2] += uint32(rgb[3*x+2])
			}
		}
		if last := y == hd.h-1; (y+1)%k == 0 || last {
			rows := uint32((y % k) + 1)
			dy := y / k
			row := out.Pix[dy*out.Stride:]
			for bx := range dw {
				cnt := rows * uint32(min(k, hd.w-bx*k))
				a := acc[3*bx : 3*bx+3 : 3*bx+3]
				p := row[4*bx : 4*bx+4 : 4*bx+4]
				p[0], p[1], p[2], p[3] = uint8((a[0]+cnt/2)/cnt), uint8((a[1]+cnt/2)/cnt), uint8((a[2]+cnt/2)/cnt), 255
				a[0], a[1], a[2] = 0, 0, 0
			}
		}
		cur, prev = prev, cur
	}
	return out, nil
}

// readPNGChunks checks the chunks' order and checksums and collects what decoding needs.
func readPNGChunks(data []byte) (*pngHeader, error) {
	const sig = "\x89PNG\r\n\x1a\n"
	if len(data) < len(sig) || string(data[:len(sig)]) != sig {
		return nil, errors.New("png: not a PNG")
	}
	hd := &pngHeader{}
	var trns []byte
	seenIHDR := false
	for p := len(sig); ; {
		if p+12 > len(data) {
			return nil, fmt.Errorf("png: %w", io.ErrUnexpectedEOF)
		}
		n := int(binary.BigEndian.Uint32(data[p:]))
		if n < 0 || n > len(data)-p-12 {
			return nil, fmt.Errorf("png: chunk of %d bytes: %w", n, io.ErrUnexpectedEOF)
		}
		typ, body := string(data[p+4:p+8]), data[p+8:p+8+n]
		if crc32.ChecksumIEEE(data[p+4:p+8+n]) != binary.BigEndian.Uint32(data[p+8+n:]) {
			return nil, fmt.Errorf("png: %s chunk: checksum mismatch", typ)
		}
		p += 12 + n
		if !seenIHDR && typ != "IHDR" {
			return nil, errors.New("png: first chunk is not IHDR")
		}
		switch typ {
		case "IHDR":
			if seenIHDR { // the callers checked the first one's size: a second would override it
				return nil, errors.New("png: second IHDR")
			}
			if n != 13 {
				return nil, errors.New("png: bad IHDR")
			}
			seenIHDR = true
			hd.w, hd.h = int(binary.BigEndian.Uint32(body)), int(binary.BigEndian.Uint32(body[4:]))
			hd.depth, hd.colour = int(body[8]), int(body[9])
			if body[10] != 0 || body[11] != 0 || body[12] > 1 {
				return nil, errors.New("png: unknown compression, filter or interlace method")
			}
			hd.interlaced = body[12] == 1
			// Callers check their own pixel limit first; this one only keeps sizes computable.
			if hd.w <= 0 || hd.h <= 0 || hd.w > 1<<24 || hd.h > 1<<24 || int64(hd.w)*int64(hd.h) > 1<<31 {
				return nil, fmt.Errorf("png: %dx%d pixels", hd.w, hd.h)
			}
			ok := map[int][]int{0: {1, 2, 4, 8, 16}, 2: {8, 16}, 3: {1, 2, 4, 8}, 4: {8, 16}, 6: {8, 16}}[hd.colour]
			if !containsInt(ok, hd.depth) {
				return nil, fmt.Errorf("png: colour type %d with bit depth %d", hd.colour, hd.depth)
			}
		case "PLTE":
			if n%3 != 0 || n/3 > 256 {
				return nil, errors.New("png: bad PLTE")
			}
			hd.paletteLen = n / 3
			for i := range hd.paletteLen {
				copy(hd.palette[i][:], body[3*i:3*i+3])
			}
		case "tRNS":
			trns = body
		case "IDAT":
			hd.idat = append(hd.idat, bytes.NewReader(body))
		case "IEND":
			if len(hd.idat) == 0 {
				return nil, errors.New("png: no image data")
			}
			if hd.colour == 3 && hd.paletteLen == 0 {
				return nil, errors.New("png: paletted image without PLTE")
			}
			hd.applyTRNS(trns)
			return hd, nil
		}
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// applyTRNS composites a palette's alpha onto white, or keeps a gray/RGB colour key.
func (hd *pngHeader) applyTRNS(trns []byte) {
	switch hd.colour {
	case 3:
		for i := range min(len(trns), hd.paletteLen) {
			a := uint32(trns[i])
			for c := range 3 {
				hd.palette[i][c] = onWhite(uint32(hd.palette[i][c]), a)
			}
		}
	case 0:
		if len(trns) >= 2 {
			hd.key = trns[:2]
		}
	case 2:
		if len(trns) >= 6 {
			hd.key = trns[:6]
		}
	}
}

// onWhite composites an 8-bit sample with 8-bit alpha onto white.
func onWhite(v, a uint32) uint8 { return uint8((v*a + 255*(255-a) + 127) / 255) }

// toRGB converts one unfiltered row to 8-bit RGB composited onto white.
func (hd *pngHeader) toRGB(row, rgb []byte) {
	w := hd.w
	switch {
	case hd.colour == 3 || (hd.colour == 0 && hd.depth < 8):
		shift, mask := 8-hd.depth, byte(1<<hd.depth-1)
		for x := range w {
			bit := x * hd.depth
			v := row[bit/8] >> (shift - bit%8) & mask
			d := rgb[3*x : 3*x+3 : 3*x+3]
			if hd.colour == 3 {
				c := &hd.palette[v]
				d[0], d[1], d[2] = c[0], c[1], c[2]
				continue
			}
			g := uint8(uint32(v) * 255 / uint32(mask))
			if hd.key != nil && uint16(v) == binary.BigEndian.Uint16(hd.key) {
				g = 255
			}
			d[0], d[1], d[2] = g, g, g
		}
	case hd.colour == 0: // 8 or 16 bits
		s := hd.depth / 8
		for x := range w {
			g := row[s*x]
			if hd.key != nil && ((s == 1 && uint16(g) == binary.BigEndian.Uint16(hd.key)) || (s == 2 && string(row[2*x:2*x+2]) == string(hd.key))) {
				g = 255
			}
			rgb[3*x], rgb[3*x+1], rgb[3*x+2] = g, g, g
		}
	case hd.colour == 2:
		s := hd.depth / 8
		for x := range w {
			p, d := row[3*s*x:3*s*x+3*s], rgb[3*x:3*x+3:3*x+3]
			d[0], d[1], d[2] = p[0], p[s], p[2*s]
			if hd.key != nil && keyed(p, s, hd.key) {
				d[0], d[1], d[2] = 255, 255, 255
			}
		}
	case hd.colour == 4:
		s := hd.depth / 8
		for x := range w {
			p := row[2*s*x:]
			g := onWhite(uint32(p[0]), uint32(p[s]))
			rgb[3*x], rgb[3*x+1], rgb[3*x+2] = g, g, g
		}
	case hd.colour == 6:
		s := hd.depth / 8
		for x := range w {
			p, d := row[4*s*x:4*s*x+4*s], rgb[3*x:3*x+3:3*x+3]
			a := uint32(p[3*s])
			d[0], d[1], d[2] = onWhite(uint32(p[0]), a), onWhite(uint32(p[s]), a), onWhite(uint32(p[2*s]), a)
		}
	}
}

// keyed reports whether an RGB pixel of s bytes per sample equals the tRNS key (2 bytes each).
func keyed(p []byte, s int, key []byte) bool {
	for c := range 3 {
		k := binary.BigEndian.Uint16(key[2*c:])
		var v uint16
		if s == 1 {
			v = uint16(p[c])
		} else {
			v = binary.BigEndian.Uint16(p[2*c:])
		}
		if v != k {
			return false
		}
	}
	return true
}

// unfilter reverses a PNG row filter in place; prev is the previous unfiltered row (zeros for
// the first).
func unfilter(filter byte, cur, prev []byte, bpp int) error {
	switch filter {
	case 0:
	case 1: // Sub
		for i := bpp; i < len(cur); i++ {
			cur[i] += cur[i-bpp]
		}
	case 2: // Up
		for i, p := range prev {
			cur[i] += p
		}
	case 3: // Average
		for i := range bpp {
			cur[i] += prev[i] / 2
		}
		for i := bpp; i < len(cur); i++ {
			cur[i] += uint8((int(cur[i-bpp]) + int(prev[i])) / 2)
		}
	case 4: // Paeth
		for i := range bpp {
			cur[i] += prev[i]
		}
		for i := bpp; i < len(cur); i++ {
			a, b, c := int(cur[i-bpp]), int(prev[i]), int(prev[i-bpp])
			p := a + b - c
			pa, pb, pc := abs(p-a), abs(p-b), abs(p-c)
			switch {
			case pa <= pb && pa <= pc:
				cur[i] += uint8(a)
			case pb <= pc:
				cur[i] += uint8(b)
			default:
				cur[i] += uint8(c)
			}
		}
	default:
		return fmt.Errorf("unknown filter %d", filter)
	}
	return nil
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
