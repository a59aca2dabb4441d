package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	berrors "go.etcd.io/bbolt/errors"
	"golang.org/x/term"

	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/internal/dburl"
	"github.com/cropshield/cropshield/store"
)

// modelConfig is what every command that loads the model shares.
type modelConfig struct {
	model     string
	ortLib    string
	device    string
	cudaDev   int
	threads   int
	logFormat string
	logLevel  string
}

// defaultModel is the trained model `make run` uses (see models/MODEL_CARD.md).
const defaultModel = "models/cropshield-v2.onnx"

func (c *modelConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.model, "model", defaultModel, "ONNX model file following the CropShield model contract")
	fs.StringVar(&c.ortLib, "ort-lib", inference.DefaultLibraryPath, "ONNX Runtime shared library ('make deps' installs the CPU build here; point it at a GPU build for CUDA)")
	fs.StringVar(&c.device, "device", "auto", "execution provider: auto (CUDA if available), cpu or cuda")
	fs.IntVar(&c.cudaDev, "cuda-device", 0, "GPU ordinal for CUDA")
	fs.IntVar(&c.threads, "threads", 0, "ONNX Runtime intra-op threads (0 = one per core)")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
}

func (c *modelConfig) options() (inference.Options, error) {
	d, err := inference.ParseDevice(c.device)
	if err != nil {
		return inference.Options{}, fmt.Errorf("%w: --device: %w", errUsage, err)
	}
	return inference.Options{LibraryPath: c.ortLib, Device: d, CUDADevice: c.cudaDev, Threads: c.threads}, nil
}

// load builds the command's logger and loads the model (for the one-shot commands: diagnose,
// eval); the caller closes it.
func (c *modelConfig) load(ctx context.Context, stderr io.Writer) (*inference.Model, error) {
	log, err := newLogger(stderr, c.logFormat, c.logLevel)
	if err != nil {
		return nil, err
	}
	opts, err := c.options()
	if err != nil {
		return nil, err
	}
	opts.Logger = log
	model, err := inference.Load(ctx, c.model, opts)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	return model, nil
}

// parseFlags parses args after applying CROPSHIELD_* environment variables as defaults, so that a
// flag on the command line wins over the environment. Flags may come before, between or after
// the positional arguments (flagsFirst). The help (-h) names each flag's variable.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(envNotes{stderr})
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		if v, ok := os.LookupEnv(name); ok {
			secret, shown := isSecret(f.Name), v
			if isDBFlag(f.Name) { // a URL's password is never shown
				shown = dburl.Redact(v)
			}
			if err := f.Value.Set(v); err != nil && envErr == nil {
				quoted := strconv.Quote(shown)
				if secret {
					quoted = "(hidden)"
				}
				envErr = fmt.Errorf("%w: %s=%s: %w", errUsage, name, quoted, err)
			}
			if !secret { // -h prints defaults: never a token
				f.DefValue = shown
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	if err := fs.Parse(flagsFirst(fs, args)); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return nil
}

// isHelp reports whether arg asks for help where a subcommand is expected (`cropshield staff -h`).
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// subcommand splits the arguments of a command that has subcommands (cache, staff, whatsapp) and
// makes the subcommand's flag set, whose -h shows the command's usage and the subcommand's flags.
// Without a subcommand (need lists them) or with -h it shows usage and returns an error.
func subcommand(cmd, usage, need string, args []string, stderr io.Writer) (sub string, fs *flag.FlagSet, rest []string, err error) {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return "", nil, nil, fmt.Errorf("%w: %s needs a subcommand: %s", errUsage, cmd, need)
	}
	sub = args[0]
	if isHelp(sub) {
		fmt.Fprint(stderr, usage)
		return "", nil, nil, flag.ErrHelp
	}
	fs = flag.NewFlagSet(cmd+" "+sub, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\nflags of %s %s:\n", usage, cmd, sub)
		fs.PrintDefaults()
	}
	return sub, fs, args[1:], nil
}

// openOffline opens the database for a command that runs while serve does not: a bbolt file
// must exist unless create (then its folder is made). While serve holds the file the error says
// so, followed by inUse (what to do instead). A PostgreSQL database (a URL) is opened beside the
// running replicas: its transactions are serialized by the server.
func openOffline(ctx context.Context, db string, create bool, inUse string) (*store.Store, error) {
	if dburl.IsURL(db) {
		st, err := store.Open(ctx, db, store.Options{Timeout: 2 * time.Second})
		if err != nil {
			return nil, fmt.Errorf("open database %s: %w", dburl.Redact(db), dburl.RedactError(err, db))
		}
		return st, nil
	}
	if create {
		if err := os.MkdirAll(filepath.Dir(db), 0o700); err != nil {
			return nil, fmt.Errorf("database folder: %w", err)
		}
	} else if _, err := os.Stat(db); err != nil {
		return nil, fmt.Errorf("no database at %s: %w", db, err)
	}
	st, err := store.Open(ctx, db, store.Options{Timeout: 2 * time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%s is in use%s: %w", db, inUse, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return st, nil
}

// envName is the environment variable of a flag: --ort-lib ↔ CROPSHIELD_ORT_LIB.
func envName(flagName string) string {
	return "CROPSHIELD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// envNotes passes the help that fs.PrintDefaults writes, adding to each flag's first line
// ("  -ort-lib string") its environment variable. PrintDefaults writes each flag in one call.
type envNotes struct{ w io.Writer }

func (e envNotes) Write(p []byte) (int, error) {
	rest, ok := bytes.CutPrefix(p, []byte("  -"))
	first, after, more := bytes.Cut(rest, []byte("\n"))
	if !ok || !more {
		return e.w.Write(p)
	}
	name, _, _ := bytes.Cut(first, []byte(" "))
	name, _, _ = bytes.Cut(name, []byte("\t"))
	out := fmt.Appendf(nil, "  -%s  [%s]\n%s", first, envName(string(name)), after)
	if _, err := e.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flagsFirst moves the flags before the positional arguments, so that `eval DIR --plot x.png`
// parses like `eval --plot x.png DIR` and `staff add NAME --role agent` like `staff add --role
// agent NAME`. After "--" everything is positional.
func flagsFirst(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil {
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
				continue
			}
			if i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		}
	}
	return append(append(flags, "--"), pos...)
}

// isDBFlag tells flags that name a store: a file, or a URL whose password is never shown.
func isDBFlag(name string) bool {
	return name == "db" || name == "from" || name == "to"
}

// isSecret tells flags whose values must never be printed (tokens, passwords).
func isSecret(name string) bool {
	// --whatsapp-db may be a postgres:// URL with a password.
	return strings.HasSuffix(name, "-token") || strings.HasSuffix(name, "password") || name == "whatsapp-db"
}

// isTerminal reports whether w is a terminal: progress bars only go there, never into logs.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
