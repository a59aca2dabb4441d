package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cropshield/cropshield/dashboard"
)

// printSetupLink prints the dashboard's one-time setup link on the console (serve's standard
// output) while no admin account exists, as Jupyter and Gitea do for their first login.
//
// The link carries a secret that makes an admin, so it goes to the console once and nowhere
// else: not to the structured log (standard error, often shipped to a log store), which only
// says that a link was printed; the dashboard keeps only the token's hash, in memory, and logs
// request paths, never query strings. The token works once and for dashboard.SetupLinkTTL, and a
// restart replaces it, so a copy left in a terminal's scroll-back, a journal that also captured
// standard output, or a reverse proxy's access log is worthless once the admin exists.
func printSetupLink(ctx context.Context, c reviewConfig, log *slog.Logger, dash *dashboard.Server, addr string) error {
	if c.console == nil {
		return nil
	}
	token, err := dash.SetupToken(ctx)
	if err != nil {
		return fmt.Errorf("review dashboard: setup link: %w", err)
	}
	if token == "" {
		return nil
	}
	base := "http://" + addr
	if c.behindTLSProxy {
		base = "https://<the dashboard's address>"
	}
	fmt.Fprintf(c.console, "\nNo admin account yet. Create the first one within %v with this one-time link (restart serve for a new one):\n\n    %s/setup?token=%s\n\n",
		dashboard.SetupLinkTTL, base, token)
	log.Warn("no admin account: a one-time setup link for the first admin was printed on standard output (it is not logged); or stop serve and run 'cropshield staff add NAME --role admin'")
	return nil
}
