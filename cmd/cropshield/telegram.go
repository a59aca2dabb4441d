package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/cropshield/cropshield/adapters/telegram"
)

// telegramConfig is the Telegram channel's part of `serve`. The channel runs when a token is
// given (--telegram-token, CROPSHIELD_TELEGRAM_TOKEN, or --telegram-token-file).
type telegramConfig struct {
	token        string
	tokenFile    string
	api          string
	webhookURL   string
	webhookAddr  string
	groupPhotos  string
	minPhotoSide int
	albumWait    time.Duration
}

func (c *telegramConfig) register(fs *flag.FlagSet) {
	// A flag whose name ends in -token is never printed (not even its default from the
	// environment): see isSecret.
	fs.StringVar(&c.token, "telegram-token", "", "Telegram bot token from @BotFather; the Telegram channel runs when it is set (prefer the environment or --telegram-token-file)")
	fs.StringVar(&c.tokenFile, "telegram-token-file", "", "file holding the Telegram bot token (instead of --telegram-token)")
	fs.StringVar(&c.api, "telegram-api", telegram.DefaultAPIEndpoint, "Telegram Bot API server")
	fs.StringVar(&c.webhookURL, "telegram-webhook-url", "", "public HTTPS URL for Telegram's webhook; empty: long polling")
	fs.StringVar(&c.webhookAddr, "telegram-webhook-addr", "127.0.0.1:8443", "listen address of the webhook (behind the TLS proxy that serves --telegram-webhook-url)")
	fs.StringVar(&c.groupPhotos, "telegram-group-photos", string(telegram.GroupPhotosAddressed), "photos answered in groups: addressed (a /diagnose caption, an @mention, a reply to the bot) or all")
	fs.IntVar(&c.minPhotoSide, "telegram-min-photo-side", 320, "download the smallest photo size whose shorter side reaches this many pixels")
	fs.DurationVar(&c.albumWait, "telegram-album-wait", 1500*time.Millisecond, "how long the photos of an album are collected after the last one")
}

// options returns the adapter's options, or ok false when Telegram is not configured.
func (c *telegramConfig) options() (opts telegram.Options, ok bool, err error) {
	token := strings.TrimSpace(c.token)
	if c.tokenFile != "" {
		if token != "" {
			return opts, false, fmt.Errorf("%w: give the Telegram token once: --telegram-token (CROPSHIELD_TELEGRAM_TOKEN) or --telegram-token-file", errUsage)
		}
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return opts, false, fmt.Errorf("%w: --telegram-token-file: %w", errUsage, err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return opts, false, fmt.Errorf("%w: --telegram-token-file %s is empty", errUsage, c.tokenFile)
		}
	}
	if token == "" {
		if c.webhookURL != "" {
			return opts, false, fmt.Errorf("%w: --telegram-webhook-url without a Telegram token", errUsage)
		}
		return opts, false, nil
	}
	gp, err := telegram.ParseGroupPhotos(c.groupPhotos)
	if err != nil {
		return opts, false, fmt.Errorf("%w: --telegram-group-photos: %w", errUsage, err)
	}
	return telegram.Options{
		Token: token, APIEndpoint: c.api, WebhookURL: c.webhookURL, WebhookAddr: c.webhookAddr,
		GroupPhotos: gp, MinPhotoSide: c.minPhotoSide,
	}, true, nil
}

// logAdapterError reports an adapter that stopped with an error, with what to do about the
// errors an operator can fix.
func logAdapterError(log *slog.Logger, name string, err error) {
	switch {
	case errors.Is(err, telegram.ErrConflict):
		log.Error("telegram: another process is receiving this bot's updates (409 Conflict): "+
			"only one CropShield may run per bot token, in one mode. Stop the other instance, or if a webhook "+
			"was set elsewhere, restart this one (polling removes it); the Telegram channel is stopped",
			"adapter", name, "err", err)
	case errors.Is(err, telegram.ErrUnauthorized):
		log.Error("telegram: the bot token was refused: check CROPSHIELD_TELEGRAM_TOKEN (ask @BotFather for /token); the Telegram channel is stopped",
			"adapter", name, "err", err)
	default:
		log.Error("adapter stopped with an error", "adapter", name, "err", err)
	}
}
