package main

import (
	"fmt"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
)

// defaultMemoryLimit is --memory-limit's default: the Go heap's soft limit. The decode budget
// bounds the pixels in flight far below it, so it binds only when something else grows; ONNX
// Runtime's own memory is outside it.
const defaultMemoryLimit = 384 << 20

// byteSize is a flag of a size in bytes: 384MiB, 1GiB, 500MB, 1048576; "off" or 0 for none.
type byteSize int64

func (b *byteSize) String() string {
	switch v := int64(*b); {
	case v <= 0:
		return "off"
	case v%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", v>>30)
	case v%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", v>>20)
	}
	return strconv.FormatInt(int64(*b), 10)
}

func (b *byteSize) Set(s string) error {
	s = strings.TrimSpace(s)
	if s == "off" || s == "0" {
		*b = 0
		return nil
	}
	units := []struct {
		suffix string
		mul    float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}, {"", 1}}
	for _, u := range units {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || v < 0 || math.IsInf(v, 0) || v*u.mul > math.MaxInt64/2 {
			break
		}
		*b = byteSize(v * u.mul)
		return nil
	}
	return fmt.Errorf("size %q: want a number with KiB, MiB, GiB (or KB, MB, GB), or off", s)
}

// applyMemoryLimit sets the Go heap's soft limit (debug.SetMemoryLimit) unless it is off. The
// garbage collector then works harder near the limit instead of letting the heap grow; the
// limit is soft: a process that really needs more gets it.
func applyMemoryLimit(limit byteSize) {
	if limit > 0 {
		debug.SetMemoryLimit(int64(limit))
	}
}
