package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/locales"
)

// diagnoseConfig is what diagnose needs besides the model: the bot's decision settings (serve's
// --threshold and --ask-crop-below) and how to print.
type diagnoseConfig struct {
	modelConfig
	threshold, askCropBelow float64
	crop, lang              string
	ids, asJSON, noOverlay  bool
}

// diagnoseCmd prints, for each file, the bot's verdict (bot.Decide: not a leaf, which crop?, an
// unknown crop, not sure, or the diagnosis) with the top-3 named in --lang, and writes
// FILE.overlay.jpg beside it. A file that cannot be read or diagnosed is reported and the others
// go on; the exit status says whether any failed.
func diagnoseCmd(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var c diagnoseConfig
	fs := flag.NewFlagSet("diagnose", flag.ContinueOnError)
	c.register(fs)
	fs.Float64Var(&c.threshold, "threshold", 0.5, "below this top-1 probability the bot says it is not sure (serve's --threshold)")
	fs.Float64Var(&c.askCropBelow, "ask-crop-below", 0.66, "without --crop, below this share of the most likely crop the bot asks which crop it is (serve's --ask-crop-below); 0 never asks")
	fs.StringVar(&c.crop, "crop", "", "the crop the farmer states (a caption or /crop), in any language: the answer is within it")
	fs.StringVar(&c.lang, "lang", locales.Default, "language of the disease and crop names (a code such as sw, or a name)")
	fs.BoolVar(&c.ids, "ids", false, "print class ids (tomato__late_blight) instead of names")
	fs.BoolVar(&c.asJSON, "json", false, "print one JSON object per file (JSON Lines)")
	fs.BoolVar(&c.noOverlay, "no-overlay", false, "do not write FILE.overlay.jpg")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cropshield diagnose [flags] FILE...\n\nPrints what the bot would answer about each photo and writes FILE.overlay.jpg beside it.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("%w: no files given", errUsage)
	}
	if c.threshold <= 0 || c.threshold > 1 {
		return fmt.Errorf("%w: --threshold %v: want a probability in (0, 1]", errUsage, c.threshold)
	}
	loc, err := locales.Load()
	if err != nil {
		return fmt.Errorf("locales: %w", err)
	}
	lang, ok := loc.Parse(c.lang)
	if !ok {
		var codes []string
		for _, l := range loc.Languages() {
			codes = append(codes, l.Code)
		}
		return fmt.Errorf("%w: --lang %q: want one of %s", errUsage, c.lang, strings.Join(codes, ", "))
	}
	model, err := c.load(ctx, stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, model.Close()) }()
	info := model.Info()
	if err := loc.CheckClasses(info.Classes); err != nil {
		return err
	}
	crop, err := c.statedCrop(loc, info.Classes)
	if err != nil {
		return err
	}
	askCrop := c.askCropBelow
	if askCrop <= 0 {
		askCrop = -1 // never, as serve
	}
	p := diagnosis{cfg: bot.Config{Threshold: c.threshold, ClearCropShare: askCrop}, crop: crop, lang: lang, loc: loc,
		classes: info.Classes, version: info.Version, ids: c.ids, overlay: !c.noOverlay}

	files := fs.Args()
	var bar *progressbar.ProgressBar
	if len(files) > 1 && isTerminal(stderr) {
		bar = progressbar.NewOptions(len(files), progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription("diagnosing"), progressbar.OptionShowCount(),
			progressbar.OptionShowIts(), progressbar.OptionSetItsString("photos"),
			progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond))
	}
	failed := 0
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := p.file(ctx, model, f)
		if bar != nil {
			_ = bar.Clear()
		}
		if err != nil {
			failed++
			r = diagnoseResult{File: f, Error: err.Error()}
			fmt.Fprintf(stderr, "%s: %v\n", f, err)
		}
		if c.asJSON {
			if err := json.NewEncoder(stdout).Encode(r); err != nil {
				return err
			}
		} else if r.Error == "" {
			if _, err := fmt.Fprintln(stdout, p.text(r)); err != nil {
				return err
			}
		}
		if bar != nil {
			_ = bar.Add(1)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d files could not be diagnosed", failed, len(files))
	}
	return nil
}

// statedCrop reads --crop: a crop of the model's classes, named in any language ("" for none).
func (c *diagnoseConfig) statedCrop(loc *locales.Bundle, classes []string) (string, error) {
	if c.crop == "" {
		return "", nil
	}
	crop, ok := loc.ParseCrop(c.crop)
	if ok && crop == locales.AnyCrop {
		return "", nil
	}
	var crops []string
	for _, class := range classes {
		if cc := locales.CropOf(class); !slices.Contains(crops, cc) {
			crops = append(crops, cc)
		}
	}
	if !ok || !slices.Contains(crops, crop) {
		return "", fmt.Errorf("%w: --crop %q: not a crop of the model (%s)", errUsage, c.crop, strings.Join(crops, ", "))
	}
	return crop, nil
}

// diagnosis turns photos into the bot's verdicts.
type diagnosis struct {
	cfg     bot.Config
	crop    string
	lang    string
	loc     *locales.Bundle
	classes []string
	version string
	ids     bool
	overlay bool
}

// diagnoseResult is one file's verdict as --json prints it.
type diagnoseResult struct {
	File string `json:"file"`
	// Verdict is what the bot answers (bot.Verdict.Kind): not_leaf, crop_question, unknown_crop,
	// crop_mismatch, unsure or diagnosis.
	Verdict bot.ReplyKind `json:"verdict,omitempty"`
	// Crop is the stated crop (--crop) the answer is within.
	Crop string `json:"crop,omitempty"`
	// Top is the top-3 the answer shows (within the stated crop where one is).
	Top []candidateJSON `json:"top,omitempty"`
	// Crops: the crops the question offers (before "another crop"), or the crop the photo shows
	// instead of the stated one.
	Crops       []cropJSON `json:"crops,omitempty"`
	NotLeaf     float64    `json:"not_leaf_score"`
	UnknownCrop float64    `json:"unknown_crop_score"`
	Millis      int64      `json:"ms"`
	Overlay     string     `json:"overlay,omitempty"`
	Error       string     `json:"error,omitempty"`
}

type candidateJSON struct {
	Class string  `json:"class"`
	Crop  string  `json:"crop"`
	Name  string  `json:"name"`
	Prob  float64 `json:"prob"`
}

type cropJSON struct {
	Crop  string  `json:"crop"`
	Name  string  `json:"name"`
	Share float64 `json:"share"`
}

// file analyses one photo and decides as the bot does.
func (p *diagnosis) file(ctx context.Context, model *inference.Model, path string) (diagnoseResult, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return diagnoseResult{}, err
	}
	res, err := model.Analyze(ctx, data)
	if err != nil {
		return diagnoseResult{}, err
	}
	v := bot.Decide(p.cfg, bot.NewAnalysis(res, p.classes, "", p.version, time.Now()), p.crop)
	r := diagnoseResult{File: path, Verdict: v.Kind, Crop: p.crop, NotLeaf: res.NotLeaf, UnknownCrop: res.UnknownCrop,
		Millis: res.Timings.Total().Milliseconds()}
	for _, c := range v.Analysis.Top {
		d, err := p.loc.Disease(p.lang, c.Class)
		if err != nil {
			return diagnoseResult{}, err
		}
		r.Top = append(r.Top, candidateJSON{Class: c.Class, Crop: d.Crop, Name: d.Name, Prob: c.Prob})
	}
	shares := cropShares(v.Analysis.Scores)
	for _, c := range v.Crops {
		r.Crops = append(r.Crops, cropJSON{Crop: c, Name: p.loc.CropName(p.lang, c), Share: shares[c]})
	}
	if p.overlay {
		out := path + ".overlay.jpg"
		if err := os.WriteFile(out, res.Overlay, 0o644); err != nil {
			return diagnoseResult{}, fmt.Errorf("write overlay: %w", err)
		}
		r.Overlay = out
	}
	return r, nil
}

// cropShares sums the scores of each crop's classes.
func cropShares(scores map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for class, s := range scores {
		out[locales.CropOf(class)] += s
	}
	return out
}

// text is one file's line: the verdict, the names (or ids) and percentages it rests on.
func (p *diagnosis) text(r diagnoseResult) string {
	pct := func(v float64) string {
		if p.ids {
			return fmt.Sprintf("%.1f%%", 100*v)
		}
		return p.loc.Percent(p.lang, v)
	}
	top := func() string {
		var parts []string
		for _, c := range r.Top {
			name := c.Crop + " · " + c.Name
			if p.ids {
				name = c.Class
			}
			parts = append(parts, name+" "+pct(c.Prob))
		}
		return strings.Join(parts, ", ")
	}
	crops := func() string {
		var parts []string
		for _, c := range r.Crops {
			name := c.Name
			if p.ids {
				name = c.Crop
			}
			parts = append(parts, name+" "+pct(c.Share))
		}
		return strings.Join(parts, ", ")
	}
	var line string
	switch r.Verdict {
	case bot.KindNotLeaf:
		line = "not a leaf (not-leaf score " + pct(r.NotLeaf) + ")"
	case bot.KindUnknownCrop:
		line = "a crop the model does not know (unknown-crop score " + pct(r.UnknownCrop) + ")"
	case bot.KindCropQuestion:
		line = "asks which crop: " + crops() + ", or another crop"
	case bot.KindCropMismatch:
		line = "the photo shows " + crops() + ", not the stated crop"
	case bot.KindUnsure:
		line = "not sure (top-1 below " + pct(p.cfg.Threshold) + "), asks for a new photo: " + top()
	default:
		line = "diagnosis: " + top()
	}
	if p.crop != "" {
		name := p.loc.CropName(p.lang, p.crop)
		if p.ids {
			name = p.crop
		}
		line = "[crop " + name + "] " + line
	}
	line = fmt.Sprintf("%s: %s  (%d ms)", r.File, line, r.Millis)
	if r.Overlay != "" {
		line += "  → " + r.Overlay
	}
	return line
}
