//go:build !cgo || noturbojpeg

package imagecodec

import "image"

const turboBuilt = false

func turboScales() []Scale { return []Scale{One} }

func turboDecode([]byte, int, int, Scale, []byte) (*image.NRGBA, error) { return nil, ErrUnsupported }

func turboEncode([]byte, []byte, int, int, int, int) ([]byte, error) { return nil, ErrUnsupported }
