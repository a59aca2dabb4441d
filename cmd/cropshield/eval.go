package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/inference/eval"
)

// evalCmd measures the model on each DIR (one folder per class id; unknown_crop/ holds leaves of
// crops the model does not know; other folders hold photos that must be rejected) through the
// bot's own decoding, preprocessing and session: one report per DIR, then a summary line per DIR.
func evalCmd(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var c modelConfig
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	c.register(fs)
	asJSON := fs.Bool("json", false, "print the report as JSON (with several folders, an array of them)")
	plot := fs.String("plot", "", "write the confusion matrix as a PNG image to this file and the reliability diagram beside it (FILE-reliability.png); with several folders, FILE-SOURCE.png and FILE-SOURCE-reliability.png")
	workers := fs.Int("workers", 2, "photos classified at once")
	threshold := fs.Float64("threshold", 0.5, "the bot answers with a diagnosis from this top-1 probability (serve's --threshold); below it, it says it is not sure")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cropshield eval [flags] DIR...\n\nEach DIR holds one folder per class id (crop__disease); unknown_crop/ holds leaves of crops the model does not know;\nany other folder (not_a_leaf/) holds photos that must be rejected. Several DIRs (lab-test, field-test, ...) get a report each and a summary.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("%w: eval takes one folder or more", errUsage)
	}
	if *threshold <= 0 || *threshold > 1 {
		return fmt.Errorf("%w: --threshold %v: want a probability in (0, 1]", errUsage, *threshold)
	}
	dirs := fs.Args()
	names := sourceNames(dirs)
	model, err := c.load(ctx, stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, model.Close()) }()
	info := model.Info()
	// Every folder is listed before any is measured: a wrong path fails at once.
	samples := make([][]eval.Sample, len(dirs))
	for i, dir := range dirs {
		if samples[i], err = eval.Scan(dir, info.Classes); err != nil {
			return err
		}
	}
	classify := func(ctx context.Context, s eval.Sample) (eval.Outcome, error) {
		data, err := os.ReadFile(s.Path)
		if err != nil {
			return eval.Outcome{}, err
		}
		res, err := model.Classify(ctx, data)
		if err != nil {
			return eval.Outcome{}, err
		}
		return eval.Outcome{Probs: res.Probs, Rejected: !res.IsLeaf, UnknownCrop: !res.KnownCrop, Latency: res.Timings.Total()}, nil
	}
	cfg := eval.Config{Classes: info.Classes, Threshold: *threshold, Workers: *workers}
	sources := make([]eval.Source, len(dirs))
	for i, dir := range dirs {
		bar := progressbar.NewOptions(len(samples[i]), progressbar.OptionSetWriter(stderr), progressbar.OptionSetVisibility(isTerminal(stderr)),
			progressbar.OptionSetDescription(fmt.Sprintf("evaluating %s on %s", info.Version, names[i])), progressbar.OptionShowCount(),
			progressbar.OptionShowIts(), progressbar.OptionSetItsString("photos"),
			progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(200*time.Millisecond))
		report, err := eval.Evaluate(ctx, samples[i], cfg, classify, func(int) { _ = bar.Add(1) })
		_ = bar.Finish()
		if err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		sources[i] = eval.Source{Name: names[i], Report: report}
	}
	if *plot != "" {
		if err := plotSources(*plot, sources); err != nil {
			return err
		}
	}
	if *asJSON {
		return writeEvalJSON(stdout, info.Version, dirs, sources)
	}
	for i, s := range sources {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "model %s on %s\n", info.Version, dirs[i])
		if s.UnknownCrop != nil && info.UnknownCropThreshold == 0 {
			fmt.Fprintf(stdout, "(the model has no %s output: it refuses no leaf as an unknown crop)\n", inference.UnknownCropName)
		}
		if err := s.WriteText(stdout); err != nil {
			return err
		}
	}
	if len(sources) > 1 {
		fmt.Fprintln(stdout)
		return eval.WriteSummary(stdout, sources)
	}
	return nil
}

// evalJSON is one folder's report as `eval --json` prints it.
type evalJSON struct {
	Model  string `json:"model"`
	Folder string `json:"folder"`
	eval.Source
}

// writeEvalJSON prints one folder's report as an object, several as an array of such objects.
func writeEvalJSON(w io.Writer, version string, dirs []string, sources []eval.Source) error {
	out := make([]evalJSON, len(sources))
	for i, s := range sources {
		out[i] = evalJSON{Model: version, Folder: dirs[i], Source: s}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if len(out) == 1 {
		return enc.Encode(out[0])
	}
	return enc.Encode(out)
}

// sourceNames names each folder by its last element ("lab-test" of ".cache/eval/lab-test/"),
// numbering repeats ("test", "test-2") so every source has its own name and plot files.
func sourceNames(dirs []string) []string {
	names := make([]string, len(dirs))
	seen := map[string]int{}
	for i, d := range dirs {
		n := strings.Map(func(r rune) rune {
			if r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
				return r
			}
			return '_'
		}, filepath.Base(filepath.Clean(d)))
		if n == "." || n == ".." || n == "_" {
			n = "source"
		}
		seen[n]++
		if seen[n] > 1 {
			n = fmt.Sprintf("%s-%d", n, seen[n])
		}
		names[i] = n
	}
	return names
}

// plotPaths are the files --plot FILE writes for each source: the confusion matrix and the
// reliability diagram. One source keeps FILE itself for the confusion matrix.
func plotPaths(file string, names []string) (confusion, reliability []string) {
	ext := filepath.Ext(file)
	base := strings.TrimSuffix(file, ext)
	for _, n := range names {
		b := base
		if len(names) > 1 {
			b += "-" + n
		}
		confusion = append(confusion, b+ext)
		reliability = append(reliability, b+"-reliability"+ext)
	}
	return confusion, reliability
}

func plotSources(file string, sources []eval.Source) error {
	names := make([]string, len(sources))
	for i, s := range sources {
		names[i] = s.Name
	}
	confusion, reliability := plotPaths(file, names)
	for i, s := range sources {
		if err := writePNG(confusion[i], s.PlotConfusion); err != nil {
			return err
		}
		if err := writePNG(reliability[i], func(w io.Writer) error { return s.PlotReliability(w, s.Name) }); err != nil {
			return err
		}
	}
	return nil
}

func writePNG(path string, draw func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if err := errors.Join(draw(f), f.Close()); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}
