package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cropshield/cropshield/dashboard"
	"github.com/cropshield/cropshield/store"
)

const cacheUsage = `usage:
  cropshield cache stats    the analysis cache's size, and how many photos it answered (last 30 days)
  cropshield cache clear    remove every stored analysis and heat-map overlay

The cache holds the model's analysis of each photo (and its heat-map) by the photo's SHA-256, so
a photo sent again is answered without the model. Clearing it removes those only: photos,
conversations, staff corrections and statistics stay, and a photo sent again is analysed again.
Each takes --db (default data/cropshield.db) and opens the database, so stop 'cropshield serve'
first; while it serves, an admin clears the cache on the dashboard's Statistics page. On
PostgreSQL (--db postgres://...) both run beside the replicas.
`

// cacheCmd shows or clears the analysis cache of a database that is not being served.
func cacheCmd(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	sub, fs, args, err := subcommand("cache", cacheUsage, "stats or clear", args, stderr)
	if err != nil {
		return err
	}
	if sub != "stats" && sub != "clear" {
		fmt.Fprint(stderr, cacheUsage)
		return fmt.Errorf("%w: unknown cache subcommand %q", errUsage, sub)
	}
	var db string
	registerDB(fs, &db)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: cache %s takes no arguments, got %q", errUsage, sub, fs.Args())
	}
	st, err := openOffline(ctx, db, false, " by 'cropshield serve': clear the cache on the dashboard's Statistics page as an admin, or stop serve first")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	if sub == "clear" {
		removed, err := st.ClearCache(ctx)
		if err != nil {
			return err
		}
		if err := st.LogStaffAudit(ctx, store.StaffAudit{Time: time.Now(), By: "cropshield cache clear", Action: store.AuditClearCache,
			Detail: fmt.Sprintf("%d analyses, %d overlays, %d bytes", removed.Analyses, removed.Overlays, removed.Bytes)}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %d analyses and %d heat-map overlays (%s); photos, conversations, corrections and statistics are kept\n",
			removed.Analyses, removed.Overlays, dashboard.FormatBytes(removed.Bytes))
		return nil
	}
	cs, err := st.CacheStats(ctx)
	if err != nil {
		return err
	}
	to := time.Now().UTC()
	days, err := st.Stats(ctx, to.AddDate(0, 0, -29), to)
	if err != nil {
		return err
	}
	var hits, answers int
	for _, d := range days {
		hits, answers = hits+d.CacheHits, answers+d.Answers
	}
	fmt.Fprintf(stdout, "analyses:  %d\noverlays:  %d\nsize:      %s\n", cs.Analyses, cs.Overlays, dashboard.FormatBytes(cs.Bytes))
	if answers == 0 {
		fmt.Fprintln(stdout, "hit rate:  no photo answered in the last 30 days")
		return nil
	}
	fmt.Fprintf(stdout, "hit rate:  %.1f %% of the %d photos answered in the last 30 days (%d from the cache)\n", 100*float64(hits)/float64(answers), answers, hits)
	return nil
}
