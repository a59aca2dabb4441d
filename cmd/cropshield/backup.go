package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/cropshield/cropshield/store"
)

const backupUsage = `usage: cropshield backup [--db data/cropshield.db] FILE

Writes a consistent copy of the database to FILE (a temporary file next to it, synced, checked
with bbolt's consistency check, then renamed: FILE is never half-written). While 'cropshield
serve' runs, the copy comes from the server through its admin socket (DB.admin.sock, reachable
only by the database's owner), in one read transaction: the bot keeps answering. Otherwise the
file is opened read-only. Restore: stop serve, copy FILE over the database, start serve.
A PostgreSQL database (--db postgres://...) is backed up with PostgreSQL's own tools (pg_dump).
`

const compactUsage = `usage: cropshield compact [--db data/cropshield.db]

Rewrites the database without its free pages (after retention or /forget removed data) and
swaps the new file in. Offline: stop 'cropshield serve' first; compact refuses a file in use.
Take a backup before. PostgreSQL (--db postgres://...) reclaims space itself (autovacuum).
`

// backupCmd copies the database to a file, through the running server if there is one.
func backupCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(stderr, backupUsage) }
	db := fs.String("db", defaultDB, "bbolt database file")
	if err := parseFlags(fs, flagsFirst(fs, args), stderr); err != nil {
		return err
	}
	if err := bboltOnly("backup", *db, "back it up with pg_dump (pg_dump -Fc -f FILE, with the same URL) or the server's base backups"); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprint(stderr, backupUsage)
		return fmt.Errorf("%w: backup takes one FILE, got %q", errUsage, fs.Args())
	}
	out := fs.Arg(0)
	start := time.Now()
	n, via, err := backup(ctx, *db, out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup of %s written to %s (%d bytes, %s, %s)\n", *db, out, n, via, time.Since(start).Round(time.Millisecond))
	return nil
}

// backup writes the copy and says where it came from.
func backup(ctx context.Context, db, out string) (int64, string, error) {
	sock := adminSocket(db)
	if _, err := os.Stat(sock); err == nil {
		n, err := backupFromServer(ctx, sock, out)
		if err == nil {
			return n, "from the running server", nil
		}
		if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, os.ErrNotExist) {
			return 0, "", err
		}
		// A socket left by a server that crashed: read the file itself.
	}
	st, err := store.OpenReadOnly(ctx, db, store.Options{Timeout: 2 * time.Second})
	if errors.Is(err, store.ErrInUse) {
		return 0, "", fmt.Errorf("%s is held by a running server whose admin socket %s does not answer: %w", db, sock, err)
	}
	if err != nil {
		return 0, "", fmt.Errorf("open database: %w", err)
	}
	n, err := st.BackupFile(ctx, out)
	return n, "from the file (no server running)", errors.Join(err, st.Close())
}

// backupFromServer streams GET /backup from the admin socket into out.
func backupFromServer(ctx context.Context, sock, out string) (int64, error) {
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://cropshield/backup", nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("admin socket %s: %w", sock, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("admin socket %s: %s", sock, resp.Status)
	}
	return store.WriteFileAtomic(ctx, out, func(w io.Writer) error {
		if _, err := io.Copy(w, resp.Body); err != nil {
			return fmt.Errorf("backup from the server: %w", err)
		}
		return nil
	})
}

// compactCmd reclaims the free pages of a database no server holds.
func compactCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compact", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(stderr, compactUsage) }
	db := fs.String("db", defaultDB, "bbolt database file")
	if err := parseFlags(fs, flagsFirst(fs, args), stderr); err != nil {
		return err
	}
	if err := bboltOnly("compact", *db, "PostgreSQL reclaims free space itself (autovacuum; VACUUM FULL to shrink the files)"); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fmt.Fprint(stderr, compactUsage)
		return fmt.Errorf("%w: compact takes no arguments, got %q", errUsage, fs.Args())
	}
	before, after, err := store.Compact(ctx, *db, store.Options{Timeout: 2 * time.Second})
	if errors.Is(err, store.ErrInUse) {
		return fmt.Errorf("%s is in use: stop 'cropshield serve' first (compact is offline): %w", *db, err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "compacted %s: %d → %d bytes\n", *db, before, after)
	return nil
}
