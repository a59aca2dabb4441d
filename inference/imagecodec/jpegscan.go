package imagecodec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// MaxScans is the most scans (SOS markers) a JPEG may have: libjpeg-turbo's TJFLAG_LIMITSCANS
// limit, applied to every decoder. A real progressive JPEG has about 10.
const MaxScans = 500

// ErrTooManyScans: the JPEG has more than MaxScans scans. Each scan of a progressive JPEG goes
// over the whole coefficient image, so 20000 of them in a few hundred kilobytes take minutes.
var ErrTooManyScans = fmt.Errorf("jpeg: more than %d scans", MaxScans)

// JPEGMarkers is what a walk over a JPEG's markers finds.
type JPEGMarkers struct {
	Scans       int  // SOS markers
	Progressive bool // the frame is progressive (SOF2, SOF6, SOF10 or SOF14)
	Components  int  // in the frame header
}

// ReadJPEGMarkers walks a JPEG's markers, skipping segments by their lengths and entropy-coded
// data byte by byte, and counts its scans. It stops at EOI or at the end of the data: a truncated
// or malformed JPEG is left to the decoders to refuse. More than MaxScans scans return
// ErrTooManyScans as soon as the walk sees them.
func ReadJPEGMarkers(data []byte) (JPEGMarkers, error) {
	var m JPEGMarkers
	if len(data) < 4 || data[0] != 0xFF || data[1] != 0xD8 {
		return m, errors.New("jpeg: no SOI marker")
	}
	for i := 2; i+1 < len(data); {
		if data[i] != 0xFF {
			// Not at a marker: in or after entropy-coded data. Find the next 0xFF.
			j := bytes.IndexByte(data[i:], 0xFF)
			if j < 0 {
				return m, nil
			}
			i += j
			continue
		}
		marker := data[i+1]
		switch {
		case marker == 0xFF: // fill byte
			i++
			continue
		case marker == 0x00, marker >= 0xD0 && marker <= 0xD7: // stuffed 0xFF, restart marker
			i += 2
			continue
		case marker == 0xD8 || marker == 0x01:
			i += 2
			continue
		case marker == 0xD9: // EOI
			return m, nil
		}
		if i+4 > len(data) {
			return m, nil
		}
		n := int(binary.BigEndian.Uint16(data[i+2:]))
		if n < 2 {
			return m, nil
		}
		seg := data[i+4 : min(len(data), i+2+n)]
		switch marker {
		case 0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF: // SOFn
			m.Progressive = marker == 0xC2 || marker == 0xC6 || marker == 0xCA || marker == 0xCE
			if len(seg) >= 6 {
				m.Components = int(seg[5])
			}
		case 0xDA: // SOS: its entropy-coded data follows, skipped above
			if m.Scans++; m.Scans > MaxScans {
				return m, ErrTooManyScans
			}
		}
		i += 2 + n
	}
	return m, nil
}
