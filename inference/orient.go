package inference

import "image"

// uprightAt maps pixel (x, y) of a w x h image stored under EXIF orientation o to where a viewer
// sees it (in the upright image, w and h swap for o >= 5). EXIF names the sides that row 0 and
// column 0 are shown on: 2 top/right, 3 bottom/right, 4 bottom/left, 5 left/top, 6 right/top,
// 7 right/bottom, 8 left/bottom.
func uprightAt(o, x, y, w, h int) (int, int) {
	switch o {
	case 2:
		return w - 1 - x, y
	case 3:
		return w - 1 - x, h - 1 - y
	case 4:
		return x, h - 1 - y
	case 5:
		return y, x
	case 6:
		return h - 1 - y, x
	case 7:
		return h - 1 - y, w - 1 - x
	case 8:
		return y, w - 1 - x
	}
	return x, y
}

// intoNRGBAOriented returns an emit function (see resampleArea) that writes the rows of a w x h
// image stored under orientation o into the upright img.
func intoNRGBAOriented(img *image.NRGBA, o, w, h int) func(int, []float32) {
	if o <= 1 || o > 8 {
		return intoNRGBA(img)
	}
	return func(y int, rgb []float32) {
		for x := range len(rgb) / 3 {
			ux, uy := uprightAt(o, x, y, w, h)
			q := img.Pix[img.PixOffset(img.Rect.Min.X+ux, img.Rect.Min.Y+uy):]
			q = q[:4:4]
			q[0], q[1], q[2], q[3] = clamp8(rgb[3*x]), clamp8(rgb[3*x+1]), clamp8(rgb[3*x+2]), 255
		}
	}
}
