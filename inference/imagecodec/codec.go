package imagecodec

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
)

// Scale is a reduction factor Num/Denom applied while decoding.
type Scale struct{ Num, Denom int }

// Apply scales a side the way libjpeg-turbo does (rounding up).
func (s Scale) Apply(n int) int { return (n*s.Num + s.Denom - 1) / s.Denom }

// One is the identity scale.
var One = Scale{1, 1}

// Codec is a JPEG implementation: libjpeg-turbo or Go's image/jpeg. The zero value is the Go
// codec.
type Codec struct{ turbo bool }

// PureGo returns the Go codec (image/jpeg), available in every build.
func PureGo() Codec { return Codec{} }

// LibJPEGTurbo returns the libjpeg-turbo codec and true when this build has it (cgo, no
// noturbojpeg tag).
func LibJPEGTurbo() (Codec, bool) { return Codec{turbo: turboBuilt}, turboBuilt }

// Default is libjpeg-turbo when built in, the Go codec otherwise.
func Default() Codec { return Codec{turbo: turboBuilt} }

// Name says which implementation this is.
func (c Codec) Name() string {
	if c.turbo {
		return "libjpeg-turbo"
	}
	return "go"
}

// Scales lists the factors DecodeJPEG can reduce by, from 1/1 down (libjpeg-turbo: 1/1, 7/8, 3/4,
// 5/8, 1/2, 3/8, 1/4, 1/8; Go: 1/1 only).
func (c Codec) Scales() []Scale {
	if c.turbo {
		return turboScales()
	}
	return []Scale{One}
}

// PickScale returns the cheapest of the codec's scales at which a w x h JPEG is still at least
// minLong pixels on its longer side and minShort on its shorter one (each clamped to the photo's
// own size, so a small photo is decoded at 1/1). Only the powers of two (1/1, 1/2, 1/4, 1/8) are
// candidates: libjpeg-turbo reduces by them with its SIMD IDCTs, while 7/8, 3/4, 5/8 and 3/8 go
// through generic C ones that cost more than decoding at the next power of two up (a 1280x960
// JPEG: 5.6 ms at 1/1, 7.7 ms at 7/8; 4000x3000: 43 ms at 1/4, 47 ms at 3/8, 46 ms at 1/2).
func (c Codec) PickScale(w, h, minLong, minShort int) Scale {
	long, short := max(w, h), min(w, h)
	minLong, minShort = min(minLong, long), min(minShort, short)
	best := One
	for _, s := range c.Scales() {
		if s.Num == 1 && s.Denom&(s.Denom-1) == 0 && s.Denom > best.Denom && s.Apply(long) >= minLong && s.Apply(short) >= minShort {
			best = s
		}
	}
	return best
}

// DecodeJPEG decodes data, a JPEG of w x h pixels (as its header says, in stored orientation),
// reduced by s (one of c.Scales()). pix, if large enough, receives libjpeg-turbo's pixels; read
// the image's own buffer, never pix, after the call. The image is *image.NRGBA (opaque) from
// libjpeg-turbo, and whatever image/jpeg returns (*image.YCbCr, *image.Gray, *image.CMYK) from Go:
// check its bounds, since Go and the fall-backs always decode at 1/1.
func (c Codec) DecodeJPEG(data []byte, w, h int, s Scale, pix []byte) (image.Image, error) {
	img, err := c.DecodeJPEGScaled(data, w, h, s, pix)
	switch {
	case errors.Is(err, ErrNeedsGo):
		return DecodeJPEGGo(data)
	case err != nil:
		return nil, err
	}
	return img, nil
}

// DecodeJPEGScaled is DecodeJPEG without the fall-back to Go's decoder: where DecodeJPEG would
// fall back, it returns an error wrapping ErrNeedsGo.
func (c Codec) DecodeJPEGScaled(data []byte, w, h int, s Scale, pix []byte) (*image.NRGBA, error) {
	if !c.turbo {
		return nil, ErrNeedsGo
	}
	img, err := turboDecode(data, w, h, s, pix)
	if errors.Is(err, ErrUnsupported) || errors.Is(err, errWarning) {
		return nil, fmt.Errorf("%w: %w", ErrNeedsGo, err)
	}
	return img, err
}

// DecodeJPEGGo decodes with image/jpeg at full size. image/jpeg has no limit on the number of
// scans: a JPEG of more than MaxScans is refused before it starts (ErrTooManyScans).
func DecodeJPEGGo(data []byte) (image.Image, error) {
	if _, err := ReadJPEGMarkers(data); errors.Is(err, ErrTooManyScans) {
		return nil, fmt.Errorf("decode jpeg: %w", err)
	}
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decode jpeg: %w", err)
	}
	return img, nil
}

// EncodeJPEG encodes an opaque image as a baseline JPEG with 4:2:0 chroma, appending to dst.
// libjpeg-turbo encodes *image.RGBA and *image.NRGBA directly; other images go through Go.
func (c Codec) EncodeJPEG(dst []byte, img image.Image, quality int) ([]byte, error) {
	if c.turbo {
		switch im := img.(type) {
		case *image.RGBA:
			return turboEncode(dst, im.Pix, im.Rect.Dx(), im.Rect.Dy(), im.Stride, quality)
		case *image.NRGBA:
			return turboEncode(dst, im.Pix, im.Rect.Dx(), im.Rect.Dy(), im.Stride, quality)
		}
	}
	buf := bytes.NewBuffer(dst)
	if err := jpeg.Encode(buf, img, &jpeg.Options{Quality: quality}); err != nil {
		return nil, fmt.Errorf("encode jpeg: %w", err)
	}
	return buf.Bytes(), nil
}
