package telegram

import (
	"context"
	"time"
)

// SetDrainHook makes Run call f once it has stopped taking updates and before it waits for the
// updates being handled: a test can then finish an update in flight and know that no queued
// update starts.
func SetDrainHook(a *Adapter, f func()) { a.drainHook = f }

// SetPause replaces the wait between polls after a quick empty answer.
func SetPause(a *Adapter, f func(ctx context.Context, d time.Duration) error) { a.pause = f }
