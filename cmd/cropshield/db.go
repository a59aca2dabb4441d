package main

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
)

// defaultDB is --db's default: a bbolt file.
const defaultDB = "data/cropshield.db"

// registerDB adds --db (CROPSHIELD_DB) to a command that opens the store.
func registerDB(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "db", defaultDB, "the database: a bbolt file (created 0600; one process at a time) or a postgres://USER:PASSWORD@HOST/DB URL (any number of serve replicas)")
}

// isDBURL tells a PostgreSQL URL from a bbolt file path.
func isDBURL(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// redactDB is db as it may be shown: a URL with its password replaced by xxxxx (a file path as
// it is).
func redactDB(db string) string {
	if !isDBURL(db) {
		return db
	}
	u, err := url.Parse(db)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	u.RawQuery, _ = redactQueryPassword(u.RawQuery) // libpq takes the password as a parameter too
	return u.Redacted()
}

// redactQueryPassword replaces the value of a raw query's password parameter with xxxxx and
// returns it too. It splits the query itself: url.Values drops a pair it cannot unescape (a
// password with a bare '%'), which would then be neither found nor hidden.
func redactQueryPassword(raw string) (string, []string) {
	var found []string
	pairs := strings.Split(raw, "&")
	for i, p := range pairs {
		k, v, _ := strings.Cut(p, "=")
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		if k != "password" || v == "" {
			continue
		}
		found = append(found, v)
		if uv, err := url.QueryUnescape(v); err == nil && uv != v {
			found = append(found, uv)
		}
		pairs[i] = p[:len(p)-len(v)] + "xxxxx"
	}
	return strings.Join(pairs, "&"), found
}

// dbPasswords are the forms of the password a database URL holds (none for a file path): as
// written, decoded and escaped. The URL need not parse: the password is what follows the first
// ':' of what precedes the last '@'.
func dbPasswords(db string) []string {
	if !isDBURL(db) {
		return nil
	}
	var raw []string
	_, rest, _ := strings.Cut(db, "://")
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		if _, p, ok := strings.Cut(rest[:i], ":"); ok {
			raw = append(raw, p)
		}
	}
	if u, err := url.Parse(db); err == nil {
		_, ps := redactQueryPassword(u.RawQuery)
		raw = append(raw, ps...)
	}
	var out []string
	for _, p := range raw {
		if p == "" {
			continue
		}
		forms := []string{p}
		if d, err := url.PathUnescape(p); err == nil {
			forms = append(forms, d)
		}
		for _, f := range forms {
			_, userinfo, _ := strings.Cut(url.UserPassword("u", f).String(), ":")
			out = append(out, f, url.QueryEscape(f), url.PathEscape(f), userinfo)
		}
	}
	// The longest first: a form that contains another is replaced whole.
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(out)
}

// dbError is err with the password of db's URL (and the URL itself) replaced, should a
// message of the driver quote them; errors.Is and As still see err.
func dbError(err error, db string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if isDBURL(db) {
		msg = strings.ReplaceAll(msg, db, redactDB(db))
	}
	for _, p := range dbPasswords(db) {
		msg = strings.ReplaceAll(msg, p, "xxxxx")
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

// redactedError is an error whose message had a secret removed.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// bboltOnly refuses a PostgreSQL URL for a command that works on a bbolt file (backup,
// compact); instead says what does the job on PostgreSQL.
func bboltOnly(cmd, db, instead string) error {
	if !isDBURL(db) {
		return nil
	}
	return fmt.Errorf("%w: %s works on a bbolt file, and --db %s is a PostgreSQL database: %s", errUsage, cmd, redactDB(db), instead)
}

// defaultReplica is --replica's default: the host name.
func defaultReplica() string {
	name, err := os.Hostname()
	if err != nil || name == "" {
		return "cropshield"
	}
	return name
}

// errReplicaName: --replica must name the process plainly.
var errReplicaName = errors.New("--replica: want 1 to 64 letters, digits, '.', '_' or '-'")

// checkReplica checks a replica name: it appears in logs and in the store's leases.
func checkReplica(name string) error {
	if name == "" || len(name) > 64 || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
		return fmt.Errorf("%w: %w (got %q)", errUsage, errReplicaName, name)
	}
	return nil
}
