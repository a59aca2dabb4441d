package telegram

import (
	"context"
	"time"
)

// SetPause replaces the wait between polls after a quick empty answer.
func SetPause(a *Adapter, f func(ctx context.Context, d time.Duration) error) { a.pause = f }
