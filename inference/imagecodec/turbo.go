//go:build cgo && !noturbojpeg

package imagecodec

/*
#cgo LDFLAGS: -lturbojpeg
#include <stdlib.h>
#include <turbojpeg.h>
*/
import "C"

import (
	"fmt"
	"image"
	"unsafe"
)

const turboBuilt = true

// turboScales are libjpeg-turbo's scaling factors that reduce (or keep) the size, largest first.
func turboScales() []Scale {
	var n C.int
	sf := C.tjGetScalingFactors(&n)
	if sf == nil || n <= 0 {
		return []Scale{One}
	}
	var out []Scale
	for _, f := range unsafe.Slice(sf, int(n)) {
		if f.num > 0 && f.num <= f.denom {
			out = append(out, Scale{int(f.num), int(f.denom)})
		}
	}
	return out
}

func turboError(h C.tjhandle, what string) error {
	msg := C.GoString(C.tjGetErrorStr2(h))
	if h != nil && C.tjGetErrorCode(h) == C.TJERR_WARNING {
		return fmt.Errorf("%w: %s: %s", errWarning, what, msg)
	}
	return fmt.Errorf("libjpeg-turbo %s: %s", what, msg)
}

// turboDecode decodes a JPEG of fullW x fullH (as the caller checked its header) to RGBA (alpha
// 255), reduced by s. A frame of another size is refused (ErrSizeMismatch).
func turboDecode(data []byte, fullW, fullH int, s Scale, pix []byte) (*image.NRGBA, error) {
	w, h := s.Apply(fullW), s.Apply(fullH)
	if len(data) == 0 || w <= 0 || h <= 0 {
		return nil, fmt.Errorf("libjpeg-turbo: empty data or %dx%d", w, h)
	}
	hnd := C.tjInitDecompress()
	if hnd == nil {
		return nil, turboError(nil, "init")
	}
	defer C.tjDestroy(hnd)
	src, size := (*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data))
	var jw, jh, sub, cs C.int
	if C.tjDecompressHeader3(hnd, src, size, &jw, &jh, &sub, &cs) != 0 {
		return nil, turboError(hnd, "header")
	}
	if int(jw) != fullW || int(jh) != fullH {
		return nil, fmt.Errorf("libjpeg-turbo: frame %dx%d, checked %dx%d: %w", jw, jh, fullW, fullH, ErrSizeMismatch)
	}
	if cs == C.TJCS_CMYK || cs == C.TJCS_YCCK {
		return nil, ErrUnsupported
	}
	n := 4 * w * h
	if cap(pix) < n {
		pix = make([]byte, n)
	}
	pix = pix[:n]
	// TJFLAG_LIMITSCANS refuses progressive JPEGs of more than 500 scans, which would take
	// minutes to decode.
	if C.tjDecompress2(hnd, src, size, (*C.uchar)(unsafe.Pointer(&pix[0])), C.int(w), C.int(4*w), C.int(h),
		C.TJPF_RGBA, C.TJFLAG_LIMITSCANS) != 0 {
		return nil, turboError(hnd, "decode")
	}
	return &image.NRGBA{Pix: pix, Stride: 4 * w, Rect: image.Rect(0, 0, w, h)}, nil
}

// turboEncode encodes opaque RGBA pixels.
func turboEncode(dst, pix []byte, w, h, stride, quality int) ([]byte, error) {
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("libjpeg-turbo encode: empty %dx%d image", w, h)
	}
	// libjpeg-turbo reads h rows of 4*w bytes, stride apart: the buffer must hold them all.
	if stride < 4*w || len(pix) < (h-1)*stride+4*w {
		return nil, fmt.Errorf("libjpeg-turbo encode: %d bytes with stride %d for %dx%d pixels", len(pix), stride, w, h)
	}
	hnd := C.tjInitCompress()
	if hnd == nil {
		return nil, turboError(nil, "init")
	}
	defer C.tjDestroy(hnd)
	var out *C.uchar
	var size C.ulong
	rc := C.tjCompress2(hnd, (*C.uchar)(unsafe.Pointer(&pix[0])), C.int(w), C.int(stride), C.int(h), C.TJPF_RGBA,
		&out, &size, C.TJSAMP_420, C.int(min(max(quality, 1), 100)), 0)
	defer C.tjFree(out)
	if rc != 0 {
		return nil, turboError(hnd, "encode")
	}
	return append(dst, unsafe.Slice((*byte)(unsafe.Pointer(out)), int(size))...), nil
}
