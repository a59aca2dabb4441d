package inference

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// MinRuntimeVersion is the oldest ONNX Runtime library this build works with: onnxruntime_go is
// compiled against the C API of version 1.24, and newer libraries keep serving older API versions.
const MinRuntimeVersion = "1.24.0"

// DefaultLibraryPath is where `make deps` installs the CPU build of ONNX Runtime, relative to the
// repository root.
const DefaultLibraryPath = ".cache/onnxruntime/libonnxruntime.so.1"

// The ONNX Runtime environment is process-wide in onnxruntime_go: it is created by the first Load
// and destroyed when the last Model is closed. This is the package's only shared state.
var env struct {
	sync.Mutex
	refs    int
	libPath string
}

// acquireRuntime loads the shared library and creates the environment if no model holds it yet.
func acquireRuntime(libPath string) (version string, err error) {
	env.Lock()
	defer env.Unlock()
	if env.refs > 0 {
		if libPath != env.libPath {
			return "", fmt.Errorf("%w: already running %s, cannot also load %s", ErrRuntime, env.libPath, libPath)
		}
		env.refs++
		return ort.GetVersion(), nil
	}
	if _, err := os.Stat(libPath); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%w: library not found at %s: run `make deps` to fetch the CPU build, or set CROPSHIELD_ORT_LIB (or --ort-lib) to an ONNX Runtime >= %s library", ErrRuntime, libPath, MinRuntimeVersion)
		}
		return "", fmt.Errorf("%w: %w", ErrRuntime, err)
	}
	disableTelemetry()
	ort.SetSharedLibraryPath(libPath)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return "", fmt.Errorf("%w: cannot start %s (it must be ONNX Runtime >= %s for linux-x64; `make deps` fetches one): %w", ErrRuntime, libPath, MinRuntimeVersion, err)
	}
	version = ort.GetVersion()
	if !versionAtLeast(version, MinRuntimeVersion) {
		derr := ort.DestroyEnvironment()
		return "", errors.Join(fmt.Errorf("%w: %s is ONNX Runtime %s, need >= %s: run `make deps` or point CROPSHIELD_ORT_LIB at a newer library", ErrRuntime, libPath, version, MinRuntimeVersion), derr)
	}
	env.refs = 1
	env.libPath = libPath
	return version, nil
}

// TelemetryEnv is the variable with which ONNX Runtime's official Linux builds (>= 1.29) leave
// their telemetry (Microsoft's 1DS SDK) off when it is set before the environment starts.
const TelemetryEnv = "ORT_DISABLE_TELEMETRY"

// disableTelemetry turns ONNX Runtime's telemetry off for the process unless the operator set
// TelemetryEnv themselves. On start-up the telemetry reads /etc/machine-id, keeps a database under
// ~/.cache/Microsoft and uploads events to Microsoft, none of which a farmers' bot should do
// unasked; and it matches a std::regex over /proc/self/cmdline that recurses once per character:
// a command line of ~28 KB (`cropshield diagnose` with ~500 long paths) overflowed the 8 MB
// thread stack and ended the process with SIGSEGV in CreateOrtEnv. The variable is read by the
// library, so it has to be in the process's environment; it is set once, before the first
// environment, under env's lock.
func disableTelemetry() {
	if _, set := os.LookupEnv(TelemetryEnv); !set {
		_ = os.Setenv(TelemetryEnv, "1") // fails only for a malformed name
	}
}

// releaseRuntime drops one reference and destroys the environment with the last one.
func releaseRuntime() error {
	env.Lock()
	defer env.Unlock()
	if env.refs == 0 {
		return nil
	}
	env.refs--
	if env.refs > 0 {
		return nil
	}
	env.libPath = ""
	if err := ort.DestroyEnvironment(); err != nil {
		return fmt.Errorf("%w: destroy environment: %w", ErrRuntime, err)
	}
	return nil
}

// versionAtLeast compares dotted numeric versions; anything unparsable counts as too old.
func versionAtLeast(have, want string) bool {
	h, w := parseVersion(have), parseVersion(want)
	if h == nil || w == nil {
		return false
	}
	for i := range w {
		if i >= len(h) {
			return false
		}
		if h[i] != w[i] {
			return h[i] > w[i]
		}
	}
	return true
}

func parseVersion(s string) []int {
	parts := strings.Split(strings.TrimSpace(s), ".")
	out := make([]int, 0, len(parts))
	for _, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil
		}
		out = append(out, n)
	}
	return out
}
