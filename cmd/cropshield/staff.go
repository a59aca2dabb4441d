package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/cropshield/cropshield/dashboard"
	"github.com/cropshield/cropshield/store"
)

const staffUsage = `usage:
  cropshield staff add NAME [--role viewer|agent|admin]
                                                    add an account; asks for the password twice
                                                    (or reads one line from stdin when it is not a terminal)
  cropshield staff list                             list the accounts
  cropshield staff remove NAME                      remove an account and end its sessions

Each takes --db (default data/cropshield.db). bbolt lets one process open the database, so stop
'cropshield serve' first (on PostgreSQL, --db postgres://..., they run beside it). While it serves, an admin adds, disables and resets accounts on the
dashboard's Staff page; with no admin yet, serve prints a one-time link that makes the first.
`

// staffCmd manages the review dashboard's accounts. There is no default account: the first one
// is made with `staff add`.
func staffCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	sub, fs, args, err := subcommand("staff", staffUsage, "add, list or remove", args, stderr)
	if err != nil {
		return err
	}
	var db string
	registerDB(fs, &db)
	role := dashboard.RoleViewer
	if sub == "add" {
		fs.StringVar(&role, "role", dashboard.RoleViewer, "viewer (reads), agent (also corrects, replies, resolves, exports) or admin (also manages staff and the cache)")
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	names := fs.Args()
	want := map[string]int{"add": 1, "list": 0, "remove": 1}
	n, ok := want[sub]
	if !ok {
		fmt.Fprint(stderr, staffUsage)
		return fmt.Errorf("%w: unknown staff subcommand %q", errUsage, sub)
	}
	if len(names) != n {
		return fmt.Errorf("%w: staff %s takes %d name(s), got %q", errUsage, sub, n, names)
	}
	st, err := openOffline(ctx, db, sub == "add", ": stop 'cropshield serve' first (one process at a time may open it)")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	switch sub {
	case "add":
		return staffAdd(ctx, st, names[0], role, stdin, stdout, stderr)
	case "remove":
		name := dashboard.NormalizeName(names[0])
		if err := st.RemoveStaff(ctx, name); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no staff account %q", name)
			}
			return err
		}
		fmt.Fprintf(stdout, "removed staff account %s and ended its sessions\n", name)
		return nil
	}
	accts, err := st.ListStaff(ctx)
	if err != nil {
		return err
	}
	if len(accts) == 0 {
		fmt.Fprintln(stdout, "no staff accounts: add one with 'cropshield staff add NAME --role agent'")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tCREATED\tSTATUS")
	for _, a := range accts {
		status := "active"
		if a.Disabled {
			status = "disabled"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Name, a.Role, a.Created.UTC().Format("2006-01-02 15:04 UTC"), status)
	}
	return tw.Flush()
}

func staffAdd(ctx context.Context, st *store.Store, name, role string, stdin io.Reader, stdout, stderr io.Writer) error {
	name = dashboard.NormalizeName(name)
	if _, err := st.GetStaff(ctx, name); err == nil {
		return fmt.Errorf("staff account %q exists: remove it first to change it", name)
	}
	password, err := readPassword(stdin, stderr)
	if err != nil {
		return err
	}
	acct, err := dashboard.NewAccount(name, role, password, 0, time.Now())
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if err := st.AddStaff(ctx, acct); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added staff account %s (%s)\n", acct.Name, acct.Role)
	return nil
}

// readPassword asks twice without echo on a terminal; otherwise it reads one line (scripts,
// tests). The password never appears in an error.
func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		ask := func(prompt string) (string, error) {
			fmt.Fprint(stderr, prompt)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(stderr)
			if err != nil {
				return "", fmt.Errorf("read password: %w", err)
			}
			return string(b), nil
		}
		return askTwice(ask)
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("%w: no password on stdin", errUsage)
	}
	return line, nil
}

// askTwice asks for a new password, checks its length at once (not after it was typed twice),
// then asks again and compares.
func askTwice(ask func(prompt string) (string, error)) (string, error) {
	p1, err := ask(fmt.Sprintf("Password (at least %d characters): ", dashboard.MinPasswordLen))
	if err != nil {
		return "", err
	}
	if err := dashboard.CheckPassword(p1); err != nil {
		return "", fmt.Errorf("%w: %w", errUsage, err)
	}
	p2, err := ask("Password again: ")
	if err != nil {
		return "", err
	}
	if p1 != p2 {
		return "", fmt.Errorf("%w: the two passwords differ", errUsage)
	}
	return p1, nil
}
