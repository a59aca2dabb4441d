package eval

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"slices"
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

// rate is a Counts as a bare percentage for tables, "-" when there is nothing to count.
func rate(c Counts) string {
	if c.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*c.Rate)
}

// WriteText prints the report for people.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "photos: %d", r.Photos)
	if len(r.Failed) > 0 {
		fmt.Fprintf(&b, " (%d unreadable: %s)", len(r.Failed), strings.Join(r.Failed, ", "))
	}
	b.WriteString("\n\n")
	th := fmt.Sprintf("%.0f%%", 100*r.Threshold)
	if r.Top1.N > 0 {
		fmt.Fprintf(&b, "leaf photos:            %d\n", r.Top1.N)
		fmt.Fprintf(&b, "top-1:                  %s\n", pct(r.Top1))
		fmt.Fprintf(&b, "top-3:                  %s\n", pct(r.Top3))
		fmt.Fprintf(&b, "top-1 within crop:      %s\n", pct(r.CropTop1))
		fmt.Fprintf(&b, "top-3 within crop:      %s\n", pct(r.CropTop3))
		fmt.Fprintf(&b, "calibration error:      %.2f%% (ECE, %d bins; from noise alone a perfectly calibrated model would measure %.1f%% here, 95%% of the time at most %.1f%%)\n",
			100*r.ECE, ECEBins, 100*r.ECEFloor.Mean, 100*r.ECEFloor.P95)
		fmt.Fprintf(&b, "the bot's reply (it answers from top-1 >= %s):\n", th)
		fmt.Fprintf(&b, "  a diagnosis:          %s\n", pct(r.Answered))
		fmt.Fprintf(&b, "  not sure:             %s\n", pct(r.Unsure))
		fmt.Fprintf(&b, "  falsely rejected:     %s  (refused as not a leaf)\n", pct(r.FalseRejected))
		fmt.Fprintf(&b, "  falsely unknown crop: %s  (refused as a crop the model does not know)\n", pct(r.FalseUnknownCrop))
		fmt.Fprintf(&b, "confidently wrong:      %s  of the diagnoses: the bot says \"X >= %s\" and X is wrong\n", pct(r.ConfidentWrong), th)
	}
	if r.Rejected.N > 0 {
		fmt.Fprintf(&b, "not-a-leaf rejected:    %s\n", pct(r.Rejected))
		for _, o := range r.Others {
			fmt.Fprintf(&b, "  %-20s  %s\n", o.Folder+"/", pct(o.Rejected))
		}
	}
	if u := r.UnknownCrop; u != nil {
		fmt.Fprintf(&b, "%s/ (leaves of crops the model does not know): %d photos\n", u.Folder, u.Photos)
		fmt.Fprintf(&b, "  ANSWERED WITH A DIAGNOSIS: %s, with a disease %s", pct(u.Answered), pct(u.AnsweredDisease))
		for i, a := range u.AnsweredAs[:min(3, len(u.AnsweredAs))] {
			sep := ", "
			if i == 0 {
				sep = "; named most: "
			}
			fmt.Fprintf(&b, "%s%s %d", sep, a.Class, a.N)
		}
		if len(u.AnsweredAs) > 3 {
			b.WriteString(", ...")
		}
		b.WriteString("\n")
		fmt.Fprintf(&b, "  refused, unknown crop:     %s\n", pct(u.Refused))
		fmt.Fprintf(&b, "  refused, not a leaf:       %s\n", pct(u.NotLeaf))
		fmt.Fprintf(&b, "  not sure:                  %s\n", pct(u.Unsure))
	}
	l := r.Latency
	fmt.Fprintf(&b, "latency per photo:      mean %.1f ms, p50 %.1f, p95 %.1f, p99 %.1f, max %.1f\n", l.MeanMS, l.P50MS, l.P95MS, l.P99MS, l.MaxMS)
	if len(r.PerClass) > 0 {
		b.WriteString("\n")
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if len(r.PerClass) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "class\tn\ttop-1\ttop-3\tcrop top-1\tcrop top-3\trejected\tunknown crop\tnot sure\tdiagnosis\tconf. wrong\twrong when named\t")
		for _, c := range r.PerClass {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", c.Class, c.Top1.N,
				rate(c.Top1), rate(c.Top3), rate(c.CropTop1), rate(c.CropTop3), rate(c.FalseRejected), rate(c.FalseUnknownCrop),
				rate(c.Unsure), rate(c.Answered), rate(c.ConfidentWrong), rate(c.WrongWhenNamed))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "(conf. wrong: of the class's photos given a diagnosis, the wrong ones; wrong when named: of the diagnoses naming the class, the wrong ones)\n"); err != nil {
			return err
		}
	}
	if r.Top1.N > 0 {
		if err := r.writeConfusion(w); err != nil {
			return err
		}
	}
	return nil
}

// Source is the report of one folder (lab-test, field-test-maize, ...).
type Source struct {
	Name string `json:"source"`
	Report
}

// WriteSummary prints one line per source: the figures to compare across them.
func WriteSummary(w io.Writer, sources []Source) error {
	var th []string
	for _, s := range sources {
		if t := fmt.Sprintf("%.0f%%", 100*s.Threshold); !slices.Contains(th, t) {
			th = append(th, t)
		}
	}
	if _, err := fmt.Fprintf(w, "summary (the bot answers from top-1 >= %s)\n", strings.Join(th, ", ")); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "source\tphotos\tleaves\ttop-1\tcrop top-1\tcrop top-3\tECE\tfloor p95\tconf. wrong\tfalse not-leaf\tfalse unknown\tnot-leaf rejected\tunknown answered\t")
	for _, s := range sources {
		ece, floor := "-", "-"
		if s.Top1.N > 0 {
			ece, floor = fmt.Sprintf("%.1f%%", 100*s.ECE), fmt.Sprintf("%.1f%%", 100*s.ECEFloor.P95)
		}
		unknown := "-"
		if s.UnknownCrop != nil {
			unknown = rate(s.UnknownCrop.Answered)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", s.Name, s.Photos, s.Top1.N,
			rate(s.Top1), rate(s.CropTop1), rate(s.CropTop3), ece, floor, rate(s.ConfidentWrong),
			rate(s.FalseRejected), rate(s.FalseUnknownCrop), rate(s.Rejected), unknown)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "(floor p95: the ECE a perfectly calibrated model stays under 95% of the time on as many photos; conf. wrong: of the leaves given a diagnosis, the wrong ones;\n"+
		" false not-leaf / unknown: leaves of model classes refused as such; not-leaf rejected: photos of other folders refused; unknown answered: unknown_crop/ leaves given a diagnosis)")
	return err
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

// textWidth is the width in pixels of s drawn in the plots' face.
func textWidth(s string) int { return font.MeasureString(basicfont.Face7x13, s).Ceil() }

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
	title := fmt.Sprintf("confusion: rows true class, columns predicted (top-1 %.1f%%)", 100*r.Top1.Rate)
	const foot = "columns numbered as the rows; green: correct, blue: confused; shade: share of the row"
	// As wide as the matrix or the longest caption, whichever is wider: a matrix of a few classes
	// cut the captions at the right edge.
	width := max(left+cell*len(used), pad+textWidth(title), pad+textWidth(foot)) + pad
	height := top + cell*len(used) + pad + 13*3
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	text := func(x, y int, s string, c color.Color) {
		d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: face, Dot: fixed.P(x, y)}
		d.DrawString(s)
	}
	text(pad, pad+10, title, color.Black)
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
	text(pad, top+cell*len(used)+17, foot, color.Gray{Y: 90})
	return png.Encode(w, img)
}

// PlotReliability draws the reliability diagram as a PNG: for each of the ECEBins confidence
// bins, a bar as high as the top-1 accuracy of its photos and, shaded, the gap to their mean
// confidence; the diagonal a perfectly calibrated model follows; the bot's threshold; and below,
// how many photos each bin holds. The title names the source and gives the ECE and its noise floor.
func (r Report) PlotReliability(w io.Writer, source string) error {
	const (
		pad       = 10
		left, top = 52, 68
		binW      = 36
		plotW     = binW * ECEBins
		plotH     = 400
		histTop   = top + plotH + 56 // the row of photo counts; the bars below it
		histH     = 50
		height    = histTop + histH + 58
	)
	px := func(v float64) int { return left + int(math.Round(v*plotW)) }        // confidence → x
	py := func(v float64) int { return top + plotH - int(math.Round(v*plotH)) } // accuracy → y
	title := "reliability"
	if source != "" {
		title += ": " + source
	}
	var heading, floor string
	if r.Top1.N == 0 {
		heading = title + "  (no leaf photos of the model's classes)"
	} else {
		heading = fmt.Sprintf("%s  (%d leaf photos, ECE %.1f%%)", title, r.Top1.N, 100*r.ECE)
		floor = fmt.Sprintf("noise floor of the ECE on as many photos: mean %.1f%%, 95th percentile %.1f%%",
			100*r.ECEFloor.Mean, 100*r.ECEFloor.P95)
	}
	const (
		foot1 = "blue: accuracy of the bin's photos; tick: their mean confidence; red: the gap"
		foot2 = "(red above blue: over-confident); line: perfect calibration; equal-width bins"
	)
	threshold := ""
	if t := r.Threshold; t > 0 && t <= 1 {
		threshold = fmt.Sprintf("threshold %.0f%%", 100*t)
	}
	// Wide enough for the plot and every line of text (they were cut at the right edge).
	width := max(left+plotW+30, pad+max(textWidth(heading), textWidth(floor), textWidth(foot1), textWidth(foot2))+pad)
	if threshold != "" {
		width = max(width, px(r.Threshold)+4+textWidth(threshold)+pad)
	}
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	text := func(x, y int, s string, c color.Color) {
		d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
		d.DrawString(s)
	}
	fill := func(x0, y0, x1, y1 int, c color.Color) {
		draw.Draw(img, image.Rect(x0, y0, x1, y1), image.NewUniform(c), image.Point{}, draw.Src)
	}
	grey, dark := color.Gray{Y: 200}, color.Gray{Y: 90}
	text(pad, pad+12, heading, color.Black)
	if floor != "" {
		text(pad, pad+28, floor, dark)
	}

	// Grid and axes.
	for i := 0; i <= 5; i++ {
		v := float64(i) / 5
		fill(px(v), top, px(v)+1, top+plotH, grey)
		fill(left, py(v), left+plotW, py(v)+1, grey)
		l := fmt.Sprintf("%.1f", v)
		text(px(v)-10, top+plotH+14, l, color.Black)
		text(left-28, py(v)+4, l, color.Black)
	}
	text(left+plotW/2-100, top+plotH+28, "top-1 confidence (mean per bin: tick)", color.Black)
	text(pad, top-10, "top-1 accuracy", color.Black)

	// Bars: accuracy, the gap to the mean confidence, the mean confidence as a tick.
	most := 0
	for _, b := range r.Reliability {
		most = max(most, b.N)
	}
	barC, gapC := color.RGBA{70, 110, 200, 255}, color.RGBA{235, 150, 140, 255}
	for i, b := range r.Reliability {
		x0, x1 := left+i*binW+2, left+(i+1)*binW-2
		if b.N > 0 {
			ya, yc := py(b.Accuracy), py(b.Confidence)
			fill(x0, min(ya, yc), x1, max(ya, yc)+1, gapC)
			fill(x0, ya, x1, top+plotH, barC)
			fill(x0-2, yc-1, x1+2, yc+1, color.Black)
			// Photo counts: a histogram under the plot with the number over each bar.
			h := max(1, int(math.Round(float64(b.N)/float64(most)*histH)))
			fill(x0, histTop+6+histH-h, x1, histTop+6+histH, dark)
			n := fmt.Sprint(b.N)
			text(x0+(x1-x0-7*len(n))/2, histTop, n, color.Black)
		}
		fill(x0, histTop+6+histH, x1, histTop+7+histH, color.Black)
	}
	// The diagonal of perfect calibration.
	for x := 0; x <= plotW; x++ {
		y := top + plotH - int(math.Round(float64(x)*plotH/plotW))
		fill(left+x, y-1, left+x+1, y+1, color.Black)
	}
	// The bot's threshold: dashed.
	if threshold != "" {
		t := r.Threshold
		orange := color.RGBA{230, 130, 0, 255}
		for y := top; y < top+plotH; y += 8 {
			fill(px(t)-1, y, px(t)+1, min(y+4, top+plotH), orange)
		}
		text(px(t)+4, top+12, threshold, orange)
	}
	fill(left, top, left+1, top+plotH, color.Black)
	fill(left, top+plotH, left+plotW, top+plotH+1, color.Black)
	text(pad, histTop, "photos", color.Black)
	text(pad, histTop+histH+26, foot1, dark)
	text(pad, histTop+histH+40, foot2, dark)
	return png.Encode(w, img)
}
