package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/cropshield/cropshield/inference"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func versionCmd(w io.Writer) error {
	rev := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = " (" + s.Value + ")"
			}
		}
	}
	_, err := fmt.Fprintf(w, "cropshield %s%s\n%s %s/%s\nONNX Runtime: needs >= %s, `make deps` installs 1.30.0\n",
		version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH, inference.MinRuntimeVersion)
	return err
}
