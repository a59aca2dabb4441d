package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
)

// Photo sizes: the adapter downloads the smallest Telegram size whose shorter side reaches 320.
const (
	photoW = 512
	photoH = 384
)

// photoSet makes the load's photos: a few drawn leaves, and from each any number of distinct
// files (the same pixels with a different JPEG comment: a different SHA-256, so each is analysed
// anew) cheaply.
type photoSet struct {
	bases [][]byte
}

func newPhotoSet(rng *rand.Rand, n int) (*photoSet, error) {
	s := &photoSet{}
	for i := range n {
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, drawLeaf(rng, i), &jpeg.Options{Quality: 85}); err != nil {
			return nil, fmt.Errorf("encode leaf: %w", err)
		}
		s.bases = append(s.bases, buf.Bytes())
	}
	return s, nil
}

// distinct returns photo number n: base n % len(bases) with comment n, so that no two numbers
// give the same bytes.
func (s *photoSet) distinct(n int) []byte {
	base := s.bases[n%len(s.bases)]
	c := fmt.Sprintf("killtest photo %08d", n)
	out := make([]byte, 0, len(base)+len(c)+4)
	out = append(out, base[:2]...) // SOI
	out = append(out, 0xFF, 0xFE, 0, byte(len(c)+2))
	out = append(out, c...)
	return append(out, base[2:]...)
}

// drawLeaf draws a green leaf (an ellipse turned by a random angle, with veins and brown
// lesions) on a noisy soil-coloured background.
func drawLeaf(rng *rand.Rand, i int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, photoW, photoH))
	angle := rng.Float64() * math.Pi
	sin, cos := math.Sin(angle), math.Cos(angle)
	rx, ry := 0.30+0.1*rng.Float64(), 0.16+0.06*rng.Float64()
	lesion := 60 + 60*rng.Float64()
	green := 100 + rng.IntN(60)
	for y := range photoH {
		for x := range photoW {
			fx, fy := float64(x)/photoW-0.5, float64(y)/photoH-0.5
			u, v := fx*cos+fy*sin, -fx*sin+fy*cos
			n := float64(rng.IntN(24)) - 12
			c := color.RGBA{clamp(140 + 30*math.Sin(fx*13+float64(i)) + n), clamp(120 + n), clamp(90 + n), 255}
			if (u/rx)*(u/rx)+(v/ry)*(v/ry) < 1 {
				vein := math.Abs(math.Sin(u*80 + v*30))
				c = color.RGBA{clamp(40 + n), clamp(float64(green) + 40*vein + n), clamp(35 + n), 255}
				if math.Sin(u*lesion)*math.Cos(v*lesion*0.8) > 0.8 {
					c = color.RGBA{clamp(115 + n), clamp(75 + n), clamp(30 + n), 255}
				}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

func clamp(v float64) uint8 { return uint8(min(max(v, 0), 255)) }
