package eval

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"strings"
	"text/tabwriter"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

func pct(c Counts) string {
	if c.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%5.1f%% (%d/%d)", 100*c.Rate, c.Hits, c.N)
}

// WriteText prints the report for people.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "photos: %d", r.Photos)
	if len(r.Failed) > 0 {
		fmt.Fprintf(&b, " (%d unreadable: %s)", len(r.Failed), strings.Join(r.Failed, ", "))
	}
	b.WriteString("\n\n")
	if r.Top1.N > 0 {
		fmt.Fprintf(&b, "leaf photos:            %d\n", r.Top1.N)
		fmt.Fprintf(&b, "top-1:                  %s\n", pct(r.Top1))
		fmt.Fprintf(&b, "top-3:                  %s\n", pct(r.Top3))
		fmt.Fprintf(&b, "top-1 within crop:      %s\n", pct(r.CropTop1))
		fmt.Fprintf(&b, "top-3 within crop:      %s\n", pct(r.CropTop3))
		fmt.Fprintf(&b, "falsely rejected:       %s\n", pct(r.FalseRejected))
		fmt.Fprintf(&b, "calibration error:      %.2f%% (ECE, %d bins; from noise alone a perfectly calibrated model would measure %.1f%% here, 95%% of the time at most %.1f%%)\n",
			100*r.ECE, ECEBins, 100*r.ECEFloor.Mean, 100*r.ECEFloor.P95)
	}
	if r.Rejected.N > 0 {
		fmt.Fprintf(&b, "not-a-leaf rejected:    %s\n", pct(r.Rejected))
		for _, o := range r.Others {
			fmt.Fprintf(&b, "  %-20s  %s\n", o.Folder+"/", pct(o.Rejected))
		}
	}
	l := r.Latency
	fmt.Fprintf(&b, "latency per photo:      mean %.1f ms, p50 %.1f, p95 %.1f, p99 %.1f, max %.1f\n\n", l.MeanMS, l.P50MS, l.P95MS, l.P99MS, l.MaxMS)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if len(r.PerClass) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "class\tn\ttop-1\ttop-3\tcrop top-1\tcrop top-3\trejected\t")
		for _, c := range r.PerClass {
			fmt.Fprintf(tw, "%s\t%d\t%.1f%%\t%.1f%%\t%.1f%%\t%.1f%%\t%.1f%%\t\n", c.Class, c.Top1.N,
				100*c.Top1.Rate, 100*c.Top3.Rate, 100*c.CropTop1.Rate, 100*c.CropTop3.Rate, 100*c.FalseRejected.Rate)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if err := r.writeConfusion(w); err != nil {
			return err
		}
	}
	return nil
}

// writeConfusion prints the confusion matrix of the classes that occur (as truth or prediction).
func (r Report) writeConfusion(w io.Writer) error {
	used := r.usedClasses()
	if _, err := fmt.Fprintln(w, "\nconfusion (rows: true class, columns: predicted, numbered as the rows)"); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight)
	head := "\t"
	for j := range used {
		head += fmt.Sprintf("%d\t", j+1)
	}
	fmt.Fprintln(tw, head)
	for i, ci := range used {
		line := fmt.Sprintf("%d %s\t", i+1, r.Classes[ci])
		for _, cj := range used {
			if v := r.Confusion[ci][cj]; v > 0 {
				line += fmt.Sprintf("%d\t", v)
			} else {
				line += ".\t"
			}
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

func (r Report) usedClasses() []int {
	var used []int
	for i := range r.Classes {
		n := 0
		for j := range r.Classes {
			n += r.Confusion[i][j] + r.Confusion[j][i]
		}
		if n > 0 {
			used = append(used, i)
		}
	}
	return used
}

// PlotConfusion draws the confusion matrix (rows normalized, darker = more) as a PNG, with the
// class ids as labels and the counts in the cells.
func (r Report) PlotConfusion(w io.Writer) error {
	used := r.usedClasses()
	const cell, pad = 28, 8
	face := basicfont.Face7x13
	label := 0
	for _, c := range used {
		label = max(label, len(r.Classes[c]))
	}
	left := pad + 7*(label+3) + 8
	top := pad + 36
	width := left + cell*len(used) + pad
	height := top + cell*len(used) + pad + 13*3
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	text := func(x, y int, s string, c color.Color) {
		d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: face, Dot: fixed.P(x, y)}
		d.DrawString(s)
	}
	text(pad, pad+10, fmt.Sprintf("confusion: rows true class, columns predicted (top-1 %.1f%%)", 100*r.Top1.Rate), color.Black)
	for i, ci := range used {
		total := 0
		for _, v := range r.Confusion[ci] {
			total += v
		}
		text(pad, top+i*cell+cell/2+4, fmt.Sprintf("%2d %*s", i+1, label, r.Classes[ci]), color.Black)
		num := fmt.Sprint(i + 1)
		text(left+i*cell+(cell-7*len(num))/2, top-6, num, color.Black)
		for j, cj := range used {
			v := r.Confusion[ci][cj]
			frac := 0.0
			if total > 0 {
				frac = float64(v) / float64(total)
			}
			shade := uint8(255 - 200*frac)
			bg := color.RGBA{shade, shade, 255, 255}
			if i == j {
				bg = color.RGBA{shade, 255, shade, 255}
			}
			rect := image.Rect(left+j*cell, top+i*cell, left+(j+1)*cell, top+(i+1)*cell)
			draw.Draw(img, rect, image.NewUniform(color.Gray{Y: 215}), image.Point{}, draw.Src)
			draw.Draw(img, rect.Inset(1), image.NewUniform(bg), image.Point{}, draw.Src)
			if v > 0 {
				s := fmt.Sprint(v)
				fg := color.Color(color.Black)
				if frac > 0.6 {
					fg = color.White
				}
				text(rect.Min.X+(cell-7*len(s))/2, rect.Min.Y+cell/2+4, s, fg)
			}
		}
	}
	foot := top + cell*len(used) + 13
	text(pad, foot+4, "columns numbered as the rows; green: correct, blue: confused; shade: share of the row", color.Gray{Y: 90})
	return png.Encode(w, img)
}
