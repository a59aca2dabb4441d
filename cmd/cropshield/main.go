// Command cropshield runs the CropShield crop-disease bot.
//
//	cropshield serve              start every configured adapter (the web chat always), /healthz, /metrics
//	cropshield diagnose FILE...   print the top-3 of each photo and write FILE.overlay.jpg
//	cropshield eval DIR...        measure the model on labelled photos (folder per class id), per folder and summed up
//	cropshield bench              measure each stage, the handler, throughput and memory on generated photos
//	cropshield staff add NAME     add a review dashboard account (also: staff list, staff remove NAME)
//	cropshield cache stats        the analysis cache's size and hit rate (also: cache clear)
//	cropshield whatsapp link      link the bot's WhatsApp phone (also: whatsapp status, whatsapp unlink)
//	cropshield backup FILE        copy the database, hot (through the running server) or from the file
//	cropshield compact            rewrite the database without its free pages (offline)
//	cropshield migrate            copy the whole store between bbolt and PostgreSQL, verified
//	cropshield checksum           print the store's digest (compare a store with its copy)
//	cropshield version            print the build's versions
//
// Every flag has a CROPSHIELD_* environment variable (flag --model ↔ CROPSHIELD_MODEL); a flag
// given on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: cropshield <command> [flags]

commands:
  serve              run the bot: web chat on --addr (default 127.0.0.1:8080), /healthz, /metrics;
                     the staff review dashboard on --review-addr (default 127.0.0.1:8081)
  diagnose FILE...   diagnose photos, print the top-3 and write FILE.overlay.jpg next to each
  eval DIR...        measure the model on labelled photos (one folder per class id; unknown_crop/,
                     not_a_leaf/): a report per folder, then a summary line per folder
  bench              measure decode, preprocess, inference, render, encode and the whole handler on
                     generated phone-like photos; photos/s with --workers N; peak RSS; --json
  staff add NAME     add a review dashboard account (--role viewer|agent|admin); staff list; staff remove NAME
  cache stats        the analysis cache's size and hit rate; cache clear empties it (analyses and
                     heat-maps only; offline, or on the dashboard's Statistics page as an admin)
  whatsapp link      link the bot's WhatsApp phone: a QR code to scan, or --phone +254... for a pairing code;
                     whatsapp status; whatsapp unlink
  backup FILE        write a consistent copy of the database to FILE, while serving too (--db)
  compact            reclaim the database's free pages after retention or /forget (offline; --db)
  migrate            copy the whole store --from a bbolt file or postgres:// URL --to an empty one,
                     verified by counts and a SHA-256 of every record (offline)
  checksum           print the store's counts and digest, the same on bbolt and PostgreSQL (--db)
  version            print versions

Run 'cropshield <command> -h' for the flags of a command.
`

// run is main without the exit, for tests.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = serveCmd(ctx, rest, stdout, stderr)
	case "diagnose":
		err = diagnoseCmd(ctx, rest, stdout, stderr)
	case "eval":
		err = evalCmd(ctx, rest, stdout, stderr)
	case "bench":
		err = benchCmd(ctx, rest, stdout, stderr)
	case "staff":
		err = staffCmd(ctx, rest, os.Stdin, stdout, stderr)
	case "cache":
		err = cacheCmd(ctx, rest, stdout, stderr)
	case "whatsapp":
		err = whatsappCmd(ctx, rest, stdout, stderr)
	case "backup":
		err = backupCmd(ctx, rest, stdout, stderr)
	case "compact":
		err = compactCmd(ctx, rest, stdout, stderr)
	case "migrate":
		err = migrateCmd(ctx, rest, stdout, stderr)
	case "checksum":
		err = checksumCmd(ctx, rest, stdout, stderr)
	case "version", "--version", "-version":
		err = versionCmd(stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "cropshield: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "cropshield: %v\n", err)
		return 2
	}
	fmt.Fprintf(stderr, "cropshield: %v\n", err)
	return 1
}

// errUsage marks errors in how the command was called (exit status 2).
var errUsage = errors.New("bad usage")

// newLogger builds the process's one logger.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: --log-format %q: want text or json", errUsage, format)
}
