package dashboard

import (
	"cmp"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/cropshield/cropshield/store"
)

// chart is a server-rendered SVG chart (templates/chart.html draws it); coordinates are in
// pixels of its viewBox. Colours come from the stylesheet through the classes s0…s5.
type chart struct {
	Title  string
	W, H   float64
	Rects  []svgRect
	Texts  []svgText
	Lines  []svgLine
	Legend []legendItem
	Empty  bool
}

type svgRect struct {
	X, Y, W, H float64
	Class, Tip string
}

type svgText struct {
	X, Y                float64
	Anchor, Class, Text string
}

type svgLine struct{ X1, Y1, X2, Y2 float64 }

type legendItem struct{ Class, Label string }

// series is one stacked layer of a bar chart.
type series struct {
	Name   string
	Values []float64
}

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// stackedBars draws one bar per label with the series stacked; yFmt writes the axis values.
func stackedBars(title string, labels []string, ss []series, yMax float64, yFmt func(float64) string) chart {
	const w, h, left, right, top, bottom = 760.0, 240.0, 48.0, 8.0, 12.0, 28.0
	c := chart{Title: title, W: w, H: h}
	total := 0.0
	sums := make([]float64, len(labels))
	for _, s := range ss {
		for i, v := range s.Values {
			sums[i] += v
			total += v
		}
	}
	if len(labels) == 0 || total == 0 && yMax <= 0 {
		c.Empty = true
		return c
	}
	if yMax <= 0 { // counts: four whole-number steps
		yMax = 4 * max(1, niceMax(slices.Max(sums)/4))
	}
	plotH, plotW := h-top-bottom, w-left-right
	for i := 0; i <= 4; i++ {
		v := yMax * float64(i) / 4
		y := top + plotH - plotH*v/yMax
		c.Lines = append(c.Lines, svgLine{left, y, w - right, y})
		c.Texts = append(c.Texts, svgText{left - 6, y + 4, "end", "axis", yFmt(v)})
	}
	slot := plotW / float64(len(labels))
	barW := math.Max(1, slot*0.7)
	every := max(1, int(math.Ceil(float64(len(labels))/12)))
	for i, label := range labels {
		x := left + slot*float64(i) + (slot-barW)/2
		y := top + plotH
		for k, s := range ss {
			v := s.Values[i]
			if v <= 0 {
				continue
			}
			bh := plotH * v / yMax
			y -= bh
			tip := label + ": " + yFmt(v)
			if s.Name != "" {
				tip = label + ", " + s.Name + ": " + yFmt(v)
			}
			c.Rects = append(c.Rects, svgRect{x, y, barW, bh, "s" + strconv.Itoa(k%6), tip})
		}
		if i%every == 0 {
			c.Texts = append(c.Texts, svgText{x + barW/2, h - 8, "middle", "axis", label})
		}
	}
	if len(ss) > 1 || ss[0].Name != "" {
		for k, s := range ss {
			c.Legend = append(c.Legend, legendItem{"s" + strconv.Itoa(k%6), s.Name})
		}
	}
	return c
}

// hbar is one row of a horizontal bar chart.
type hbar struct {
	Label string
	Value float64
	Text  string // the value as shown
}

func hbars(title string, rows []hbar, vMax float64) chart {
	const w, labelW, barMax, rowH, top = 760.0, 260.0, 400.0, 24.0, 6.0
	c := chart{Title: title, W: w, H: top*2 + rowH*float64(len(rows))}
	if len(rows) == 0 {
		c.Empty = true
		return c
	}
	if vMax <= 0 {
		for _, r := range rows {
			vMax = math.Max(vMax, r.Value)
		}
		if vMax == 0 {
			vMax = 1
		}
	}
	for i, r := range rows {
		y := top + rowH*float64(i)
		bw := barMax * r.Value / vMax
		c.Texts = append(c.Texts, svgText{labelW - 8, y + rowH*0.68, "end", "label", r.Label})
		c.Rects = append(c.Rects, svgRect{labelW, y + 3, math.Max(bw, 1), rowH - 6, "s" + strconv.Itoa(i%6), r.Label + ": " + r.Text})
		c.Texts = append(c.Texts, svgText{labelW + bw + 6, y + rowH*0.68, "start", "value", r.Text})
	}
	return c
}

// tally sums the counters of several days.
type tally struct {
	Key                                                                 string
	Answers, Diagnoses, Unsure, NotLeaf, UnknownCrop, Errors, CacheHits int
}

func (t *tally) add(d store.DayStats) {
	t.Answers += d.Answers
	t.Diagnoses += d.Diagnoses
	t.Unsure += d.Unsure
	t.NotLeaf += d.NotLeaf
	t.UnknownCrop += d.UnknownCrop
	t.Errors += d.Errors
	t.CacheHits += d.CacheHits
}

func share(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

// UnsureShare, NotLeafShare, UnknownCropShare and CacheHitRate are for the template.
func (t tally) UnsureShare() float64      { return share(t.Unsure, t.Answers) }
func (t tally) NotLeafShare() float64     { return share(t.NotLeaf, t.Answers) }
func (t tally) UnknownCropShare() float64 { return share(t.UnknownCrop, t.Answers) }
func (t tally) CacheHitRate() float64     { return share(t.CacheHits, t.Answers) }

type statsView struct {
	Days        int
	DayChoices  []int
	From, To    time.Time
	Total       tally
	ByPlatform  []tally
	ByLanguage  []tally
	PerDay      chart
	UnsurePer   chart
	TopDiseases chart
	CacheHits   chart
	Languages   chart
	Cache       cacheView
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request, sess *session) {
	days, _ := strconv.Atoi(r.URL.Query().Get("days"))
	if !slices.Contains([]int{7, 30, 90, 365}, days) {
		days = 30
	}
	to := s.opts.Now().UTC().Truncate(24 * time.Hour)
	from := to.AddDate(0, 0, 1-days)
	rows, err := s.st.Stats(r.Context(), from, to)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sv := statsView{Days: days, DayChoices: []int{7, 30, 90, 365}, From: from, To: to}
	cs, err := s.st.CacheStats(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sv.Cache = cacheView{CacheStats: cs, Size: FormatBytes(cs.Bytes), CanClear: sess.Admin()}
	labels := make([]string, days)
	for i := range days {
		labels[i] = from.AddDate(0, 0, i).Format("01-02")
	}
	dayIndex := func(t time.Time) int { return int(t.Sub(from) / (24 * time.Hour)) }
	perPlatform := map[string][]float64{}
	unsure, answers := make([]float64, days), make([]float64, days)
	byPlatform, byLanguage, classes := map[string]*tally{}, map[string]*tally{}, map[string]int{}
	for _, d := range rows {
		i := dayIndex(d.Day)
		if i < 0 || i >= days {
			continue
		}
		if perPlatform[d.Platform] == nil {
			perPlatform[d.Platform] = make([]float64, days)
		}
		perPlatform[d.Platform][i] += float64(d.Answers)
		unsure[i] += float64(d.Unsure)
		answers[i] += float64(d.Answers)
		sv.Total.add(d)
		for _, g := range []struct {
			m   map[string]*tally
			key string
		}{{byPlatform, d.Platform}, {byLanguage, cmp.Or(d.Language, "?")}} {
			if g.m[g.key] == nil {
				g.m[g.key] = &tally{Key: g.key}
			}
			g.m[g.key].add(d)
		}
		for c, n := range d.Classes {
			classes[c] += n
		}
	}
	var ss []series
	for _, p := range s.platforms() {
		if v, ok := perPlatform[p]; ok {
			ss = append(ss, series{p, v})
		}
	}
	count := func(v float64) string { return strconv.Itoa(int(v)) }
	pct := func(v float64) string { return fmt.Sprintf("%.0f%%", v*100) }
	sv.PerDay = stackedBars("Photos answered per day, by platform", labels, ss, 0, count)
	shares := make([]float64, days)
	for i := range shares {
		if answers[i] > 0 {
			shares[i] = unsure[i] / answers[i]
		}
	}
	sv.UnsurePer = stackedBars("Share of \"not sure\" answers per day", labels, []series{{"", shares}}, 1, pct)
	sv.UnsurePer.Empty = sv.Total.Answers == 0

	type classCount struct {
		class string
		n     int
	}
	var cc []classCount
	for c, n := range classes {
		cc = append(cc, classCount{c, n})
	}
	slices.SortFunc(cc, func(a, b classCount) int { return cmp.Or(b.n-a.n, cmp.Compare(a.class, b.class)) })
	var top []hbar
	for _, c := range cc[:min(10, len(cc))] {
		top = append(top, hbar{s.diseaseName(c.class), float64(c.n), strconv.Itoa(c.n)})
	}
	sv.TopDiseases = hbars("Top diseases (confident diagnoses)", top, 0)

	sorted := func(m map[string]*tally) []tally {
		var out []tally
		for _, t := range m {
			out = append(out, *t)
		}
		slices.SortFunc(out, func(a, b tally) int { return cmp.Or(b.Answers-a.Answers, cmp.Compare(a.Key, b.Key)) })
		return out
	}
	sv.ByPlatform, sv.ByLanguage = sorted(byPlatform), sorted(byLanguage)
	var hits, langs []hbar
	for _, t := range sv.ByPlatform {
		hits = append(hits, hbar{t.Key, t.CacheHitRate(), fmt.Sprintf("%s of %d", share100(t.CacheHitRate()), t.Answers)})
	}
	for _, t := range sv.ByLanguage {
		langs = append(langs, hbar{s.languageName(t.Key), float64(t.Answers), strconv.Itoa(t.Answers)})
	}
	sv.CacheHits = hbars("Cache-hit rate by platform", hits, 1)
	sv.Languages = hbars("Photos answered by language", langs, 0)
	s.render(w, r, http.StatusOK, "stats", view{Title: "Statistics", Nav: "stats", Session: sess, Page: sv})
}
