package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/dashboard"
	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
)

// reviewConfig is the review dashboard's part of `serve`.
type reviewConfig struct {
	addr           string
	behindTLSProxy bool
	// ready, if set, is called with the dashboard's listen address once it accepts connections.
	ready func(addr string)
	// console, if set, gets the one-time setup link while no admin account exists (setuplink.go).
	console io.Writer
	// http bounds each connection to the dashboard's server (zero fields: dashboardLimits).
	http httpLimits
}

func (c *reviewConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "review-addr", "127.0.0.1:8081", "listen address of the staff review dashboard (\"\" turns it off); serve it to others only through a TLS reverse proxy")
	fs.BoolVar(&c.behindTLSProxy, "review-tls-behind-proxy", false, "the dashboard is reached through an HTTPS reverse proxy: Secure cookies, client address from X-Forwarded-For")
}

// reviewServer is the running dashboard; a nil one (dashboard off) does nothing.
type reviewServer struct {
	srv  *http.Server
	done chan error
}

// startReview builds the dashboard over the adapters (staff replies go out through them) and
// serves it on its own listener.
func startReview(ctx context.Context, c reviewConfig, log *slog.Logger, st *store.Store, loc *locales.Bundle, info inference.Info, adapters []bot.Adapter) (*reviewServer, error) {
	if c.addr == "" {
		return nil, nil
	}
	responders := map[bot.Platform]bot.Responder{}
	for _, a := range adapters {
		responders[a.Platform()] = a
		if _, ok := a.(bot.RemoteSender); ok && !st.Shared() {
			// A bbolt file is this process's alone: no other replica can send a reply queued for
			// it, so one it cannot send is logged as not delivered rather than queued.
			responders[a.Platform()] = localSender{a}
		}
	}
	log = log.With("component", "dashboard")
	dash, err := dashboard.New(log, dashboard.Options{Store: st, Responders: responders, Locales: loc,
		Classes: info.Classes, ModelVersion: info.Version, BehindTLSProxy: c.behindTLSProxy})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return nil, listenError("review dashboard", "review-addr", c.addr, err)
	}
	r := &reviewServer{done: make(chan error, 1), srv: c.http.or(dashboardLimits()).server(dash.Handler(), log)}
	go func() { r.done <- r.srv.Serve(ln) }()
	log.Info("review dashboard serving", "url", "http://"+ln.Addr().String()+"/", "behind_tls_proxy", c.behindTLSProxy)
	if err := printSetupLink(ctx, c, log, dash, ln.Addr().String()); err != nil {
		return nil, errors.Join(err, r.srv.Close())
	}
	// Ready once the console says what it should (the setup link): a test reads it then.
	if c.ready != nil {
		c.ready(ln.Addr().String())
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() && !c.behindTLSProxy {
		log.Warn("the review dashboard listens beyond this machine without TLS: passwords and sessions would cross the network in clear; put it behind a TLS reverse proxy (README) and pass --review-tls-behind-proxy")
	}
	return r, nil
}

// failed delivers the dashboard server's error if it stops by itself (never, when off).
func (r *reviewServer) failed() <-chan error {
	if r == nil {
		return nil
	}
	return r.done
}

// shutdown stops the dashboard gracefully (its in-flight requests, such as an export, finish
// until ctx ends), then closes what is left.
func (r *reviewServer) shutdown(ctx context.Context) error {
	if r == nil {
		return nil
	}
	err := r.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, r.srv.Close())
	}
	if err != nil {
		return fmt.Errorf("review dashboard: %w", err)
	}
	return nil
}

// localSender hides its Responder's bot.RemoteSender: staff replies are always sent here.
type localSender struct{ bot.Responder }
