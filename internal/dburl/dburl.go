// Package dburl names a database by its target (a bbolt file's path, or a PostgreSQL URL that may
// carry a password) and shows targets and errors without their passwords. It is the one
// redaction of database URLs: the store, the commands and the WhatsApp adapter's own database use it.
package dburl

import (
	"net/url"
	"slices"
	"strings"
)

// A PostgreSQL URL may carry a password in its user info, or as a password or sslpassword
// parameter. Whatever shows a target (logs, errors, -h, ps) shows Redact's form, and errors pass
// through RedactError.

// IsURL reports whether target names a PostgreSQL database rather than a bbolt file.
func IsURL(target string) bool {
	return strings.HasPrefix(target, "postgres://") || strings.HasPrefix(target, "postgresql://")
}

// Redact is target as it may be shown: a URL with its passwords replaced by xxxxx, a file path as
// it is.
func Redact(target string) string {
	if !IsURL(target) {
		return target
	}
	u, err := url.Parse(target)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	u.RawQuery, _ = redactQuery(u.RawQuery)
	return u.Redacted()
}

// RedactError is err with target's passwords (in every form a driver's message could quote them:
// as written, decoded, escaped) and target itself replaced by their redacted forms; errors.Is and
// As still see err. An error that quotes none is returned as it is.
func RedactError(err error, target string) error {
	if err == nil || !IsURL(target) {
		return err
	}
	msg := strings.ReplaceAll(err.Error(), target, Redact(target))
	if msg != err.Error() {
		err = &redactedError{msg: msg, err: err}
	}
	return Hide(err, Secrets(target))
}

// redactQuery replaces the values of a raw query's password parameters with xxxxx and returns
// them too (as written and unescaped). It splits the query itself: url.Values drops a pair it
// cannot unescape (a password with a bare '%'), which would then be neither found nor hidden.
func redactQuery(raw string) (string, []string) {
	var secrets []string
	pairs := strings.Split(raw, "&")
	for i, p := range pairs {
		k, v, _ := strings.Cut(p, "=")
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		if k != "password" && k != "sslpassword" || v == "" {
			continue
		}
		secrets = append(secrets, v)
		if uv, err := url.QueryUnescape(v); err == nil && uv != v {
			secrets = append(secrets, uv)
		}
		pairs[i] = p[:len(p)-len(v)] + "xxxxx"
	}
	return strings.Join(pairs, "&"), secrets
}

// Secrets returns the forms of the passwords a URL holds (none for a file path), longest first
// so that a form containing another is replaced whole. The URL need not parse: the user info's
// password is what follows the first ':' of what precedes the last '@'.
func Secrets(target string) []string {
	if !IsURL(target) {
		return nil
	}
	var raw []string
	_, rest, _ := strings.Cut(target, "://")
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		if _, p, ok := strings.Cut(rest[:i], ":"); ok {
			raw = append(raw, p)
		}
	}
	if u, err := url.Parse(target); err == nil {
		_, ps := redactQuery(u.RawQuery)
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
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(out)
}

// redactedError hides secrets in an error's message; errors.Is and As still see the error.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Hide returns err with every secret (Secrets) replaced by xxxxx in its message.
func Hide(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}
