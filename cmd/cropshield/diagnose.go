package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/cropshield/cropshield/inference"
)

// diagnoseCmd prints the top-3 of each file (and whether the model refuses it as not a leaf or as
// a leaf of a crop it does not know) and writes FILE.overlay.jpg beside it. A file that
// cannot be read or diagnosed is reported and the others go on; the exit status says whether any
// failed.
func diagnoseCmd(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var c modelConfig
	fs := flag.NewFlagSet("diagnose", flag.ContinueOnError)
	c.register(fs)
	noOverlay := fs.Bool("no-overlay", false, "do not write FILE.overlay.jpg")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cropshield diagnose [flags] FILE...")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("%w: no files given", errUsage)
	}
	model, err := c.load(ctx, stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, model.Close()) }()

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
		if err := diagnoseFile(ctx, model, f, !*noOverlay, stdout); err != nil {
			failed++
			if bar != nil {
				_ = bar.Clear()
			}
			fmt.Fprintf(stderr, "%s: %v\n", f, err)
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

func diagnoseFile(ctx context.Context, model *inference.Model, path string, overlay bool, stdout io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	res, err := model.Analyze(ctx, data)
	if err != nil {
		return err
	}
	line := path + ":"
	for _, c := range res.Top {
		line += fmt.Sprintf("  %s %.1f%%", c.ID, 100*c.Prob)
	}
	// The bot would not diagnose these: say so (not a leaf takes precedence).
	switch {
	case !res.IsLeaf:
		line += fmt.Sprintf("  [not a leaf: score %.1f%%]", 100*res.NotLeaf)
	case !res.KnownCrop:
		line += fmt.Sprintf("  [unknown crop: score %.1f%%]", 100*res.UnknownCrop)
	}
	line += fmt.Sprintf("  (%d ms)", res.Timings.Total().Milliseconds())
	if overlay {
		out := path + ".overlay.jpg"
		if err := os.WriteFile(out, res.Overlay, 0o644); err != nil {
			return fmt.Errorf("write overlay: %w", err)
		}
		line += "  → " + out
	}
	_, err = fmt.Fprintln(stdout, line)
	return err
}
