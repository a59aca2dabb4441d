package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cropshield/cropshield/adapters/telegram"
	"github.com/cropshield/cropshield/adapters/webchat"
	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/internal/dburl"
	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
)

type serveConfig struct {
	modelConfig
	addr string
	// db is a bbolt file or a postgres:// URL (never shown with its password: dburl.Redact).
	db string
	// dbPool bounds the connections to PostgreSQL (store.Options.PoolSize; 0: the store's 8).
	dbPool int
	// replica names this process among the replicas sharing a PostgreSQL store (the host name).
	replica   string
	threshold float64
	// askCropBelow: without a stated crop, below this share of its most likely crop the bot
	// asks which crop (bot.Config.ClearCropShare), as about a leaf the model judges an unknown
	// crop; 0 (a serveConfig built in code) never asks.
	askCropBelow float64
	workers      int
	drainTimeout time.Duration
	// intake bounds the messages handled at once and waiting (bot.IntakeConfig).
	intake       bot.IntakeConfig
	memLimit     byteSize
	decodeBudget byteSize
	telegram     telegramConfig
	whatsapp     whatsappConfig
	review       reviewConfig
	ops          opsConfig
	// ready, if set, is called with the listen address once the server accepts connections.
	ready func(addr string)
	// http bounds each connection to the web chat's server (zero fields: webLimits).
	http httpLimits
	// listen, if set, opens the web chat's listener instead of net.Listen("tcp", addr).
	listen func(addr string) (net.Listener, error)
}

func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := serveConfig{memLimit: defaultMemoryLimit, decodeBudget: inference.DefaultDecodeBudget}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cropshield serve [flags]")
		fs.PrintDefaults()
	}
	c.register(fs)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "listen address of the web chat, /healthz and /metrics")
	registerDB(fs, &c.db)
	fs.IntVar(&c.dbPool, "db-pool", 0, "most connections to PostgreSQL at once (--db postgres://...; 0: 8); transactions beyond it wait")
	fs.StringVar(&c.replica, "replica", defaultReplica(), "this process's name among the replicas sharing one PostgreSQL database (--db postgres://...): in the log and in the store's per-chat leases; give each replica its own, and the same again when it restarts")
	fs.Float64Var(&c.threshold, "threshold", 0.5, "below this top-1 probability the bot says it is not sure and asks for a new photo")
	fs.Float64Var(&c.askCropBelow, "ask-crop-below", 0.66, "without a crop stated by the farmer, below this share of its most likely crop the bot asks which crop it is (a leaf the model judges an unknown crop is asked about too, with \"another crop\"); 0 never asks")
	fs.IntVar(&c.workers, "workers", 2, "photos analysed at once")
	fs.DurationVar(&c.drainTimeout, "drain-timeout", 20*time.Second, "how long shutdown waits for messages being handled")
	fs.IntVar(&c.intake.Workers, "message-workers", 8, "messages handled at once, across chats and channels (the model's own limit is --workers)")
	fs.IntVar(&c.intake.ChatQueue, "queue-per-chat", 20, "messages one chat may have waiting or being handled; more wait (Telegram, WhatsApp) or get \"busy, try again\" (web chat)")
	fs.IntVar(&c.intake.Queue, "queue", 1000, "messages all chats together may have waiting or being handled")
	fs.Var(&c.memLimit, "memory-limit", "soft limit of the Go heap (debug.SetMemoryLimit), e.g. 384MiB or 1GiB; off for none")
	fs.Var(&c.decodeBudget, "decode-budget", "bytes of decoded pixels that the photos being analysed may hold at once; a photo waits for its share")
	c.telegram.register(fs)
	c.whatsapp.register(fs)
	c.review.register(fs)
	c.ops.register(fs)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: serve takes no arguments, got %q", errUsage, fs.Args())
	}
	if err := checkReplica(c.replica); err != nil {
		return err
	}
	log, err := newLogger(stderr, c.logFormat, c.logLevel)
	if err != nil {
		return err
	}
	c.review.console = stdout // the first admin's setup link: on the console, apart from the log
	return serve(ctx, c, log)
}

// serve wires everything and shuts it down in order: stop adapters → drain the handler → close
// HTTP → close the model session → close bbolt.
func serve(ctx context.Context, c serveConfig, log *slog.Logger) (err error) {
	opts, err := c.options()
	if err != nil {
		return err
	}
	opts.Logger, opts.DecodeBudget = log, int64(c.decodeBudget)
	applyMemoryLimit(c.memLimit)
	tgOpts, withTelegram, err := c.telegram.options()
	if err != nil {
		return err
	}
	if _, err := c.whatsapp.options(); c.whatsapp.enabled && err != nil {
		return err
	}
	loc, err := locales.Load()
	if err != nil {
		return fmt.Errorf("locales: %w", err)
	}
	if err := checkWhatsAppDB(c.whatsapp.enabled, c.whatsapp.db, c.db); err != nil {
		return err
	}
	if !dburl.IsURL(c.db) {
		if err := os.MkdirAll(filepath.Dir(c.db), 0o700); err != nil {
			return fmt.Errorf("database folder: %w", err)
		}
	}
	st, err := store.Open(ctx, c.db, store.Options{PoolSize: c.dbPool})
	if err != nil {
		return fmt.Errorf("open database %s: %w", dburl.Redact(c.db), dburl.RedactError(err, c.db))
	}
	defer func() { err = errors.Join(err, closeLogged(log, "database", st.Close)) }()
	// One process per replica name: its chats' leases are taken back at once after a restart,
	// so a second live process with the name would take the first's chats.
	self, err := st.Hold(ctx, "replica:"+c.replica)
	if errors.Is(err, store.ErrHeld) {
		return fmt.Errorf("%w: another process serves as replica %q on this database: give each replica its own --replica name", errUsage, c.replica)
	}
	if err != nil {
		return fmt.Errorf("replica name: %w", dburl.RedactError(err, c.db))
	}
	stopWatch, watchDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watchDone)
		select {
		case <-self.Lost():
			log.Error("lost the database session holding this replica's name: another process could now start under it", "replica", c.replica)
		case <-stopWatch:
		}
	}()
	defer func() {
		close(stopWatch)
		<-watchDone // before Release, which closes Lost too
		err = errors.Join(err, self.Release())
	}()
	model, err := inference.Load(ctx, c.model, opts)
	if err != nil {
		return fmt.Errorf("load model: %w", err)
	}
	defer func() { err = errors.Join(err, closeLogged(log, "model session", model.Close)) }()
	if strings.HasPrefix(model.Info().Version, "contract-") {
		log.Warn("using the contract TEST model: its diagnoses are not reliable; pass --model for a trained one",
			"model", c.model, "model_version", model.Info().Version)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := bot.NewMetrics(reg)
	if err := bot.RegisterCacheSize(reg, st.CacheStats); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	askCrop := c.askCropBelow
	if askCrop <= 0 {
		askCrop = -1 // never
	}
	handler, err := bot.NewHandler(bot.Config{Threshold: c.threshold, Workers: c.workers, ClearCropShare: askCrop}, log, st, model, loc, metrics)
	if err != nil {
		return err
	}
	// The one intake for every channel: the durable inbox, each chat's queue, retries.
	intake := bot.NewIntake(c.intakeConfig(), log.With("part", "intake"), st, handler)
	web, err := webchat.New(log.With("adapter", "webchat"), webchat.Options{Pages: handler})
	if err != nil {
		return err
	}
	var adapters []bot.Adapter
	held := map[bot.Platform]string{} // adapters one replica at a time runs: their lock
	if c.ops.webchat() {
		adapters = append(adapters, web)
	}
	if withTelegram {
		tgOpts.Chats = bot.NewMoves(st)
		tg, err := telegram.New(log.With("adapter", "telegram"), tgOpts)
		if err != nil {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
		adapters = append(adapters, tg)
		if tgOpts.WebhookURL == "" {
			// getUpdates answers one poller per bot: the replicas polling stand by but one.
			sum := sha256.Sum256([]byte(tgOpts.Token))
			held[bot.Telegram] = "telegram polling:" + hex.EncodeToString(sum[:8])
		}
	}
	if c.whatsapp.enabled {
		wa, closeWA, waErr := c.whatsapp.adapter(ctx, log, c.db, bot.NewMoves(st))
		if waErr != nil {
			return waErr
		}
		if acct := wa.Account(); acct != "" {
			held[bot.WhatsApp] = "whatsapp:" + acct
		}
		// Closed after the adapters stopped (deferred calls run after the shutdown below).
		defer func() { err = errors.Join(err, closeLogged(log, "WhatsApp database", closeWA)) }()
		adapters = append(adapters, wa)
	}

	mux := http.NewServeMux()
	if c.ops.webchat() {
		web.Routes(mux)
	}
	health := &healthState{accepting: intake.Accepting}
	for _, a := range adapters {
		health.set(string(a.Platform()), "running") // before the first /healthz can be asked
	}
	// /metrics and /healthz: on --addr, or on --metrics-addr (which takes --addr's place when there
	// is no web chat).
	opsMux, metricsMux := mux, http.Handler(nil)
	if c.ops.metricsAddr != "" {
		if c.ops.webchat() {
			opsMux = http.NewServeMux()
			metricsMux = opsMux
		} else {
			c.addr = c.ops.metricsAddr
		}
	}
	opsMux.Handle("GET /healthz", health)
	opsMux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	listen := c.listen
	if listen == nil {
		listen = func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
	}
	ln, err := listen(c.addr)
	if err != nil {
		return listenError("web chat", "addr", c.addr, err)
	}
	srv := c.http.or(webLimits()).server(mux, log)
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Serve(ln) }()
	if c.ready != nil {
		c.ready(ln.Addr().String())
	}
	log.Info("CropShield serving", "web_chat", "http://"+ln.Addr().String()+"/", "metrics", "/metrics", "healthz", "/healthz",
		"db", dburl.Redact(c.db), "replica", c.replica, "provider", model.Info().Provider, "memory_limit", c.memLimit.String(), "decode_budget", c.decodeBudget.String())
	review, err := startReview(ctx, c.review, log, st, loc, model.Info(), adapters)
	if err != nil {
		return errors.Join(err, srv.Close())
	}
	ops, err := c.ops.start(log, metricsMux, st, c.db)
	if err != nil {
		return errors.Join(err, srv.Close(), review.shutdown(ctx))
	}

	adapterCtx, stopAdapters := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAdapters()
	var wg sync.WaitGroup
	for _, a := range adapters {
		wg.Go(func() {
			run := adapterRun(log, st, a, intake, held[a.Platform()], func(s string) { health.set(string(a.Platform()), s) })
			if err := run(adapterCtx); err != nil {
				logAdapterError(log, string(a.Platform()), err)
				health.set(string(a.Platform()), "failed: "+err.Error())
				return
			}
			health.set(string(a.Platform()), "stopped")
		})
	}

	// A server that dies ends serve with an error (a non-zero exit), after the same orderly
	// shutdown, so that a supervisor restarts the process.
	var failed error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-httpDone:
		failed = fmt.Errorf("HTTP server: %w", err)
		log.Error("HTTP server failed; shutting down", "err", err)
	case err := <-review.failed():
		failed = fmt.Errorf("review dashboard server: %w", err)
		log.Error("review dashboard server failed; shutting down", "err", err)
	case err := <-ops.failed():
		failed = err // names its server
		log.Error("operations server failed; shutting down", "err", err)
	}
	// The stop gate first, while the adapters can still send: no message starts from now on
	// (the web chat answers "busy", Telegram and WhatsApp are not acknowledged), those being
	// handled finish within --drain-timeout, the rest waits in the inbox for the next start.
	dctx, cancel := context.WithTimeout(context.Background(), c.drainTimeout)
	defer cancel()
	if err := intake.Stop(dctx); err != nil {
		log.Warn("shutdown: messages still in progress were interrupted", "err", err)
	}
	stopAdapters()
	wg.Wait()
	if err := handler.Wait(dctx); err != nil {
		log.Warn("shutdown: messages still in progress", "err", err)
	}
	if err := srv.Shutdown(dctx); err != nil {
		log.Warn("shutdown: HTTP", "err", err)
	}
	if err := review.shutdown(dctx); err != nil {
		log.Warn("shutdown: HTTP", "err", err)
	}
	if err := ops.shutdown(dctx); err != nil {
		log.Warn("shutdown: operations", "err", err)
	}
	log.Info("stopped")
	return failed
}

// intakeConfig is the intake's configuration: the flags', the album wait of Telegram and the
// replica's name (its chats' leases in a shared store).
func (c serveConfig) intakeConfig() bot.IntakeConfig {
	ic := c.intake
	ic.AlbumWait = c.telegram.albumWait
	ic.Replica = c.replica
	return ic
}

func closeLogged(log *slog.Logger, what string, close func() error) error {
	if err := close(); err != nil {
		return fmt.Errorf("close %s: %w", what, err)
	}
	log.Debug("closed", "what", what)
	return nil
}

// healthState is /healthz: 200 while every adapter runs (or stands by while another replica
// runs it), 503 otherwise, naming each adapter's state. An adapter "running" whose channel the
// intake has not opened yet (accepting false: still reaching its platform, or taking back the
// last run's messages) is "starting", so a 200 means every channel takes messages.
type healthState struct {
	accepting func(bot.Platform) bool
	mu        sync.Mutex
	adapters  map[string]string
}

func (h *healthState) set(name, state string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.adapters == nil {
		h.adapters = map[string]string{}
	}
	h.adapters[name] = state
}

func (h *healthState) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	code := http.StatusOK
	body := ""
	for _, name := range slices.Sorted(maps.Keys(h.adapters)) {
		state := h.adapters[name]
		if state == "running" && h.accepting != nil && !h.accepting(bot.Platform(name)) {
			state = "starting"
		}
		if state != "running" && state != "standby" {
			code = http.StatusServiceUnavailable
		}
		body += name + ": " + state + "\n"
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}
