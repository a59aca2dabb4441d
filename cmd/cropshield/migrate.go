package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/cropshield/cropshield/dashboard"
	"github.com/cropshield/cropshield/internal/dburl"
	"github.com/cropshield/cropshield/store"
)

const migrateUsage = `usage: cropshield migrate --from SRC --to DST
       cropshield migrate --verify-only --from SRC --to DST

Copies a whole store from SRC to DST, each a bbolt file or a postgres://USER:PASSWORD@HOST/DB
URL: bbolt to PostgreSQL to run several replicas, and back. Everything is copied: conversations,
photos, analyses and heat-maps, chats and users with their languages and crops, turns and the
inbox, staff accounts, sessions and audit, corrections and statistics.

DST must be empty: a new bbolt file (created 0600), or a PostgreSQL database no replica has
started on (its tables are created). SRC is read in one snapshot: a bbolt file is opened
read-only and refused while 'cropshield serve' holds it (stop the server first); on PostgreSQL,
writes after the snapshot are not copied, so stop the replicas first. The copy is written in
transactions of at most 1,000 keys or 16 MiB, with progress on stderr, then verified: a SHA-256
of every bucket, key, value and sequence, and counts per bucket, computed from SRC's snapshot
and again from DST. Any difference names the first differing key and exits 1; a copy cut short
leaves DST partly written: empty it before trying again.

--verify-only copies nothing: it compares SRC and DST the same way. 'cropshield checksum --db X'
prints one store's digest. WhatsApp's device keys (--whatsapp-db) are a store of their own and
are not copied. Passwords in URLs are never printed.
`

const checksumUsage = `usage: cropshield checksum [--db data/cropshield.db]

Prints the store's counts per bucket and its digest: a SHA-256 of every bucket, key, value and
sequence, the same for a bbolt file and a PostgreSQL database holding the same data (compare the
digests of a store and its copy made by 'cropshield migrate'). A bbolt file is opened read-only:
stop 'cropshield serve' first. On PostgreSQL the digest is of one snapshot.
`

// migrateMaxTime bounds a whole migrate: the source's read transaction lasts the whole copy, and
// PostgreSQL bounds a transaction whose context has no deadline by its query timeout (seconds).
const migrateMaxTime = 7 * 24 * time.Hour

// migrateCmd copies a store to an empty one (or compares two) and verifies the copy.
func migrateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(stderr, migrateUsage)
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	from := fs.String("from", "", "the store to copy: a bbolt file or a postgres:// URL")
	to := fs.String("to", "", "the empty store to copy into: a bbolt file (created) or a postgres:// URL")
	verifyOnly := fs.Bool("verify-only", false, "copy nothing: compare the two stores and exit 1 if they differ")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("%w: migrate takes no arguments, got %q (--from SRC --to DST)", errUsage, fs.Args())
	case *from == "" || *to == "":
		fmt.Fprint(stderr, migrateUsage)
		return fmt.Errorf("%w: migrate needs --from SRC and --to DST", errUsage)
	case sameStore(*from, *to):
		return fmt.Errorf("%w: --from and --to name the same store %s", errUsage, dburl.Redact(*from))
	}
	// Whatever a driver's message quotes, neither URL's password is shown.
	defer func() { err = dburl.RedactError(dburl.RedactError(err, *from), *to) }()
	ctx, cancel := context.WithTimeout(ctx, migrateMaxTime)
	defer cancel()

	src, err := openMigrateSource(ctx, *from)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, src.Close()) }()
	if *verifyOnly {
		dst, err := openMigrateSource(ctx, *to)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, dst.Close()) }()
		a, b, err := store.Compare(ctx, src, dst)
		printCounts(stdout, a, b)
		if err != nil {
			return fmt.Errorf("%s and %s differ (digests %s and %s): %w", dburl.Redact(*from), dburl.Redact(*to), a, b, err)
		}
		fmt.Fprintf(stdout, "%s and %s hold the same data: sha256 %s\n", dburl.Redact(*from), dburl.Redact(*to), a)
		return nil
	}

	dst, created, err := openMigrateDest(ctx, *to)
	if err != nil {
		return err
	}
	defer func() {
		err = errors.Join(err, dst.Close())
		if err != nil && created {
			// A bbolt file this run created holds nothing anyone needs: a retry starts afresh.
			err = errors.Join(err, os.Remove(*to))
		}
	}()
	fmt.Fprintf(stderr, "migrating %s → %s\n", dburl.Redact(*from), dburl.Redact(*to))
	start := time.Now()
	rep, err := store.Copy(ctx, dst, src, store.CopyOptions{Progress: progressPrinter(stderr)})
	took := time.Since(start)
	if errors.Is(err, store.ErrMismatch) {
		printCounts(stdout, rep.Source, rep.Dest)
		return fmt.Errorf("the copy in %s differs from %s (digests %s and %s): %w", dburl.Redact(*to), dburl.Redact(*from), rep.Dest, rep.Source, err)
	}
	if errors.Is(err, store.ErrNotEmpty) {
		return fmt.Errorf("%w (migrate copies into an empty store only)", err)
	}
	if err != nil {
		if !created {
			err = fmt.Errorf("%w (%s may hold part of the copy: empty it before trying again)", err, dburl.Redact(*to))
		}
		return err
	}
	printCounts(stdout, rep.Source, rep.Dest)
	tot := rep.Source.Total()
	if tot.Keys <= 1 { // the schema version only
		fmt.Fprintf(stderr, "note: %s holds no data: is it the store you meant?\n", dburl.Redact(*from))
	}
	fmt.Fprintf(stdout, "migrated %s → %s: %d keys, %d nested buckets, %s in %d transactions, %s (%.0f keys/s); verified: sha256 %s on both\n",
		dburl.Redact(*from), dburl.Redact(*to), tot.Keys, tot.Buckets, dashboard.FormatBytes(tot.Bytes), rep.Txs,
		took.Round(time.Millisecond), float64(tot.Keys)/max(took.Seconds(), 1e-3), rep.Dest)
	return nil
}

// checksumCmd prints a store's digest.
func checksumCmd(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("checksum", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(stderr, checksumUsage)
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	var db string
	registerDB(fs, &db)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: checksum takes no arguments, got %q", errUsage, fs.Args())
	}
	defer func() { err = dburl.RedactError(err, db) }()
	ctx, cancel := context.WithTimeout(ctx, migrateMaxTime)
	defer cancel()
	st, err := openMigrateSource(ctx, db)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	d, err := store.Checksum(ctx, st)
	if err != nil {
		return err
	}
	printCounts(stdout, d, d)
	fmt.Fprintf(stdout, "sha256 %s  %s\n", d, dburl.Redact(db))
	return nil
}

// openMigrateSource opens a store to read: a bbolt file read-only (refused while a server holds
// it), or a PostgreSQL database.
func openMigrateSource(ctx context.Context, db string) (*store.Store, error) {
	if dburl.IsURL(db) {
		st, err := store.Open(ctx, db, store.Options{Timeout: 10 * time.Second})
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", dburl.Redact(db), err)
		}
		return st, nil
	}
	st, err := store.OpenReadOnly(ctx, db, store.Options{Timeout: 2 * time.Second})
	if errors.Is(err, store.ErrInUse) {
		return nil, fmt.Errorf("%s is in use by a running server: stop the server first (the store is read in one snapshot, and a server would keep writing): %w", db, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", db, err)
	}
	return st, nil
}

// openMigrateDest opens the store to copy into, creating a bbolt file (and its folder) if
// missing; created says it did.
func openMigrateDest(ctx context.Context, db string) (st *store.Store, created bool, err error) {
	if dburl.IsURL(db) {
		st, err := store.Open(ctx, db, store.Options{Timeout: 10 * time.Second})
		if err != nil {
			return nil, false, fmt.Errorf("open %s: %w", dburl.Redact(db), err)
		}
		return st, false, nil
	}
	if _, err := os.Stat(db); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(db), 0o700); err != nil {
			return nil, false, fmt.Errorf("database folder: %w", err)
		}
		created = true
	}
	st, err = store.Open(ctx, db, store.Options{Timeout: 2 * time.Second})
	if err != nil {
		if created {
			err = errors.Join(err, os.Remove(db))
		}
		return nil, false, fmt.Errorf("open %s (a server holding it must be stopped): %w", db, err)
	}
	return st, created, nil
}

// sameStore reports whether two --from/--to values name one store: the same URL, or the same
// file.
func sameStore(a, b string) bool {
	if dburl.IsURL(a) || dburl.IsURL(b) {
		return a == b
	}
	fa, erra := os.Stat(a)
	fb, errb := os.Stat(b)
	if erra == nil && errb == nil {
		return os.SameFile(fa, fb)
	}
	aa, erra := filepath.Abs(a)
	ab, errb := filepath.Abs(b)
	return erra == nil && errb == nil && aa == ab
}

// progressPrinter reports a copy's progress on w: when it reaches another top-level bucket, and
// every few seconds.
func progressPrinter(w io.Writer) func(store.CopyProgress) {
	var bucket string
	var last time.Time
	return func(p store.CopyProgress) {
		if p.Bucket == bucket && time.Since(last) < 3*time.Second {
			return
		}
		bucket, last = p.Bucket, time.Now()
		fmt.Fprintf(w, "  %-16s bucket %d of %d; copied %d keys, %d nested buckets, %s in %d transactions\n",
			p.Bucket, p.BucketsDone+1, p.BucketsAll, p.Keys, p.Buckets, dashboard.FormatBytes(p.Bytes), p.Txs)
	}
}

// printCounts writes the counts per top-level bucket of a store (src), with those of a second
// one (cp) where they differ.
func printCounts(w io.Writer, src, cp store.Digest) {
	other := map[string]store.BucketCount{}
	for _, b := range cp.Buckets {
		other[b.Name] = b
	}
	seen := map[string]bool{}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "bucket\tkeys\tnested buckets\tbytes\tsequence\t")
	row := func(b store.BucketCount, note string) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", b.Name, b.Keys, b.Buckets, b.Bytes, b.Sequence, note)
	}
	for _, b := range src.Buckets {
		seen[b.Name] = true
		row(b, "")
		if o, ok := other[b.Name]; !ok {
			row(store.BucketCount{Name: b.Name}, "← the other store: missing")
		} else if o != b {
			row(o, "← the other store")
		}
	}
	for _, o := range cp.Buckets {
		if !seen[o.Name] {
			row(store.BucketCount{Name: o.Name}, "")
			row(o, "← the other store only")
		}
	}
	t := src.Total()
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t\t\n", t.Keys, t.Buckets, t.Bytes)
	_ = tw.Flush()
}
