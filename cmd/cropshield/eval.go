package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/cropshield/cropshield/inference/eval"
)

// evalCmd measures the model on DIR (one folder per class id; other folders hold photos that
// must be rejected) through the bot's own decoding, preprocessing and session.
func evalCmd(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var c modelConfig
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	c.register(fs)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	plot := fs.String("plot", "", "write the confusion matrix as a PNG image to this file")
	workers := fs.Int("workers", 2, "photos classified at once")
	threshold := fs.Float64("threshold", 0.5, "the bot answers with a diagnosis from this top-1 probability (serve's --threshold); below it, it says it is not sure")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cropshield eval [flags] DIR\n\nDIR holds one folder per class id (crop__disease); any other folder (not_a_leaf/) holds photos that must be rejected.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("%w: eval takes one folder", errUsage)
	}
	model, err := c.load(ctx, stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, model.Close()) }()
	info := model.Info()
	samples, err := eval.Scan(fs.Arg(0), info.Classes)
	if err != nil {
		return err
	}
	bar := progressbar.NewOptions(len(samples), progressbar.OptionSetWriter(stderr), progressbar.OptionSetVisibility(isTerminal(stderr)),
		progressbar.OptionSetDescription("evaluating "+info.Version), progressbar.OptionShowCount(),
		progressbar.OptionShowIts(), progressbar.OptionSetItsString("photos"),
		progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(200*time.Millisecond))
	classify := func(ctx context.Context, s eval.Sample) (eval.Outcome, error) {
		data, err := os.ReadFile(s.Path)
		if err != nil {
			return eval.Outcome{}, err
		}
		res, err := model.Classify(ctx, data)
		if err != nil {
			return eval.Outcome{}, err
		}
		return eval.Outcome{Probs: res.Probs, Rejected: !res.IsLeaf, Latency: res.Timings.Total()}, nil
	}
	cfg := eval.Config{Classes: info.Classes, Threshold: *threshold, Workers: *workers}
	report, err := eval.Evaluate(ctx, samples, cfg, classify, func(int) { _ = bar.Add(1) })
	_ = bar.Finish()
	if err != nil {
		return err
	}
	if *plot != "" {
		f, err := os.Create(*plot)
		if err != nil {
			return err
		}
		if err := errors.Join(report.PlotConfusion(f), f.Close()); err != nil {
			return fmt.Errorf("plot: %w", err)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Model string `json:"model"`
			eval.Report
		}{info.Version, report})
	}
	fmt.Fprintf(stdout, "model %s on %s\n", info.Version, fs.Arg(0))
	return report.WriteText(stdout)
}
