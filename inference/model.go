package inference

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	ort "github.com/yalue/onnxruntime_go"
)

// Names fixed by the model contract (DESIGN.md).
const (
	InputName  = "image"
	LogitsName = "logits"
	CAMName    = "cam"
	// NotLeafName is the optional output [N]: a score in 0..1, higher meaning less like a leaf,
	// with the metadata key not_leaf_threshold saying from which score a photo is rejected.
	NotLeafName = "not_leaf"
	// UnknownCropName is the optional output [N]: a score in 0..1, higher meaning less like any
	// crop of the model's classes, with the metadata key unknown_crop_threshold saying from which
	// score a leaf is taken for a crop the model does not know.
	UnknownCropName = "unknown_crop"
)

// Metadata keys of the optional outputs' thresholds, each a number in (0, 1].
const (
	notLeafThresholdKey     = "not_leaf_threshold"
	unknownCropThresholdKey = "unknown_crop_threshold"
)

// Device chooses the execution provider.
type Device string

// The devices Load understands.
const (
	// DeviceAuto uses CUDA when the library and the machine have it, the CPU otherwise.
	DeviceAuto Device = "auto"
	// DeviceCPU always uses the CPU.
	DeviceCPU Device = "cpu"
	// DeviceCUDA asks for CUDA; if it is unavailable Load warns and falls back to the CPU.
	DeviceCUDA Device = "cuda"
)

// ParseDevice accepts "auto", "cpu" or "cuda".
func ParseDevice(s string) (Device, error) {
	switch d := Device(s); d {
	case DeviceAuto, DeviceCPU, DeviceCUDA:
		return d, nil
	case "":
		return DeviceAuto, nil
	}
	return "", fmt.Errorf("unknown device %q (want auto, cpu or cuda)", s)
}

// Options configure Load. The zero value is usable apart from LibraryPath, which defaults to
// DefaultLibraryPath.
type Options struct {
	// LibraryPath is the ONNX Runtime shared library.
	LibraryPath string
	Device      Device
	// CUDADevice is the GPU ordinal used with CUDA.
	CUDADevice int
	// Threads is the number of intra-op threads; 0 means one per CPU core.
	Threads int
	Logger  *slog.Logger
	// Limits bound what Decode accepts; zero fields take DefaultLimits.
	Limits Limits
	// OverlayMaxSide bounds the longest side of the overlay (default 1024).
	OverlayMaxSide int
	// JPEGQuality of the overlay (default 80).
	JPEGQuality int
	// DecodeBudget bounds the bytes of decoded pixels held by the photos being analysed at once
	// (default DefaultDecodeBudget); a photo waits for its share (Analyze honours ctx meanwhile).
	DecodeBudget int64
	// PureGoJPEG decodes and encodes JPEG with Go's image/jpeg even where libjpeg-turbo is built
	// in: slower (no decoding at reduced size), for comparisons.
	PureGoJPEG bool
}

// Info describes a loaded model, read from the live session's metadata.
type Info struct {
	Path          string
	Version       string // metadata model_version
	Description   string
	Classes       []string
	Mean, Std     [3]float32
	InputSize     int // the square input side
	ResizeShorter int // the shorter side is resized to this, then center-cropped to InputSize
	Temperature   float64
	// NotLeafThreshold is the not_leaf score from which a photo is refused as not a leaf; 0 when
	// the model has no not_leaf output.
	NotLeafThreshold float64
	// UnknownCropThreshold is the unknown_crop score from which a leaf is taken for a crop outside
	// the model's classes; 0 when the model has no unknown_crop output.
	UnknownCropThreshold float64
	CAMWidth             int
	CAMHeight            int
	Provider             string // "CUDA" or "CPU": what really runs
	RuntimeVersion       string
	Metadata             map[string]string
}

// Class is one candidate diagnosis.
type Class struct {
	Index int
	ID    string
	Prob  float64 // softmax probability (after temperature scaling)
}

// Heatmap is a class-activation map after ReLU, scaled to 0..1, row-major.
type Heatmap struct {
	W, H int
	V    []float32
}

// Prediction is the model's answer for one image: the top classes, best first, and the Grad-CAM
// heat-map of each.
type Prediction struct {
	Top      []Class
	Heatmaps []Heatmap
	// Probs holds every class's probability, in the order of Info.Classes.
	Probs []float64
	// NotLeaf is the model's not_leaf score (0 if it has none); IsLeaf is false when the score
	// reaches the model's threshold.
	NotLeaf float64
	IsLeaf  bool
	// UnknownCrop is the model's unknown_crop score (0 if it has none); KnownCrop is false when
	// the score reaches the model's threshold (or is NaN): the leaf is of a crop the model does
	// not know, and its classes say nothing about it. True for a model without the output.
	UnknownCrop float64
	KnownCrop   bool
}

// Outputs are the model's raw outputs for a batch of n images, flattened row-major.
type Outputs struct {
	Logits []float32 // [n,K]
	CAM    []float32 // [n,K,h,w]
	// NotLeaf [n] and UnknownCrop [n] are nil when the model lacks the output.
	NotLeaf     []float32
	UnknownCrop []float32
}

// Model is a loaded model with its one ONNX Runtime session. Safe for concurrent use.
type Model struct {
	info    Info
	opts    Options
	log     *slog.Logger
	session *ort.DynamicAdvancedSession
	pipe    *pipeline // decode budget and reused buffers

	camW, camH int // the cam output's map size, set by the warm-up run
	// outputs are the outputs the session runs: logits, cam, then the optional ones it has.
	outputs []string

	mu     sync.RWMutex // held for reading by every run, for writing by Close
	closed bool
}

// TopK is how many candidates Predict returns.
const TopK = 3

// Load opens the model at path in one ONNX Runtime session, checks it against the model contract
// and runs it once. It logs which execution provider runs.
func Load(ctx context.Context, path string, opts Options) (*Model, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	log := opts.Logger
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	rtVersion, err := acquireRuntime(opts.LibraryPath)
	if err != nil {
		return nil, err
	}
	m := &Model{opts: opts, log: log, pipe: newPipeline(opts)}
	ok := false
	defer func() {
		if !ok {
			_ = releaseRuntime()
		}
	}()

	outputs, err := checkIO(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m.outputs = outputs
	session, provider, err := newSession(data, outputs, opts, log)
	if err != nil {
		return nil, err
	}
	m.session = session
	info, err := readInfo(session)
	if err == nil {
		err = errors.Join(
			together(m.has(NotLeafName), info.NotLeafThreshold > 0, NotLeafName, notLeafThresholdKey),
			together(m.has(UnknownCropName), info.UnknownCropThreshold > 0, UnknownCropName, unknownCropThresholdKey))
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("%s: %w", path, err), m.destroySession())
	}
	info.Path = path
	info.Provider = provider
	info.RuntimeVersion = rtVersion
	m.info = info
	if err := m.warmUp(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("%s: %w", path, err), m.destroySession())
	}
	ok = true
	log.Info("model loaded", "path", path, "model_version", info.Version, "classes", len(info.Classes),
		"input", info.InputSize, "outputs", outputs, "provider", provider, "onnxruntime", rtVersion)
	return m, nil
}

// together checks that an optional output and its threshold come as a pair.
func together(hasOutput, hasThreshold bool, output, key string) error {
	switch {
	case hasOutput && !hasThreshold:
		return fmt.Errorf("%w: the model has the output %q but no metadata key %q (its threshold)", ErrContract, output, key)
	case !hasOutput && hasThreshold:
		return fmt.Errorf("%w: the metadata key %q is set but the model has no output %q", ErrContract, key, output)
	}
	return nil
}

// has reports whether the model has (and runs) the output name.
func (m *Model) has(name string) bool { return slices.Contains(m.outputs, name) }

func (o Options) withDefaults() Options {
	if o.LibraryPath == "" {
		o.LibraryPath = DefaultLibraryPath
	}
	if o.Device == "" {
		o.Device = DeviceAuto
	}
	if o.Threads <= 0 {
		o.Threads = runtime.NumCPU()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Limits = o.Limits.withDefaults()
	if o.OverlayMaxSide <= 0 {
		o.OverlayMaxSide = 1024
	}
	if o.JPEGQuality <= 0 || o.JPEGQuality > 100 {
		o.JPEGQuality = 80
	}
	if o.DecodeBudget <= 0 {
		o.DecodeBudget = DefaultDecodeBudget
	}
	return o
}

// checkIO validates names, element types and ranks of the model's inputs and outputs and returns
// the output names to run: logits, cam and those of not_leaf and unknown_crop the model has.
func checkIO(data []byte) ([]string, error) {
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(data)
	if err != nil {
		return nil, fmt.Errorf("%w: not a loadable ONNX model: %w", ErrContract, err)
	}
	find := func(list []ort.InputOutputInfo, kind, name string, rank int) (bool, error) {
		for _, io := range list {
			if io.Name != name {
				continue
			}
			if io.DataType != ort.TensorElementDataTypeFloat {
				return true, fmt.Errorf("%w: %s %q is %v, want float32", ErrContract, kind, name, io.DataType)
			}
			if len(io.Dimensions) != rank {
				return true, fmt.Errorf("%w: %s %q has shape %v, want rank %d", ErrContract, kind, name, io.Dimensions, rank)
			}
			return true, nil
		}
		return false, fmt.Errorf("%w: no %s named %q", ErrContract, kind, name)
	}
	_, e1 := find(ins, "input", InputName, 4)
	_, e2 := find(outs, "output", LogitsName, 2)
	_, e3 := find(outs, "output", CAMName, 4)
	names := []string{LogitsName, CAMName}
	errs := []error{e1, e2, e3}
	for _, opt := range []string{NotLeafName, UnknownCropName} {
		found, err := find(outs, "output", opt, 1)
		if found {
			names = append(names, opt)
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return names, nil
}

// newSession creates the session on the requested device, falling back to the CPU.
func newSession(data []byte, outputs []string, opts Options, log *slog.Logger) (*ort.DynamicAdvancedSession, string, error) {
	build := func(cuda bool) (*ort.DynamicAdvancedSession, error) {
		so, err := ort.NewSessionOptions()
		if err != nil {
			return nil, fmt.Errorf("%w: session options: %w", ErrRuntime, err)
		}
		defer func() { _ = so.Destroy() }()
		if err := so.SetIntraOpNumThreads(opts.Threads); err != nil {
			return nil, fmt.Errorf("%w: threads: %w", ErrRuntime, err)
		}
		if err := so.SetInterOpNumThreads(1); err != nil {
			return nil, fmt.Errorf("%w: threads: %w", ErrRuntime, err)
		}
		// Idle ONNX Runtime threads would otherwise spin and steal the cores that decode and
		// render the photos around each run.
		if err := so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
			return nil, fmt.Errorf("%w: session config: %w", ErrRuntime, err)
		}
		if cuda {
			co, err := ort.NewCUDAProviderOptions()
			if err != nil {
				return nil, fmt.Errorf("cuda provider options: %w", err)
			}
			defer func() { _ = co.Destroy() }()
			if err := co.Update(map[string]string{"device_id": strconv.Itoa(opts.CUDADevice)}); err != nil {
				return nil, fmt.Errorf("cuda provider options: %w", err)
			}
			if err := so.AppendExecutionProviderCUDA(co); err != nil {
				return nil, fmt.Errorf("append cuda provider: %w", err)
			}
		}
		s, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{InputName}, outputs, so)
		if err != nil {
			return nil, fmt.Errorf("%w: create session: %w", ErrRuntime, err)
		}
		return s, nil
	}
	if opts.Device != DeviceCPU {
		s, err := build(true)
		if err == nil {
			return s, fmt.Sprintf("CUDA (device %d)", opts.CUDADevice), nil
		}
		logCUDAFallback(log, opts, err)
	}
	s, err := build(false)
	if err != nil {
		return nil, "", err
	}
	return s, "CPU", nil
}

// cudaProviderLib is the library of the CUDA execution provider, which a GPU build of ONNX
// Runtime keeps beside libonnxruntime.so (the CPU build has none; ONNX Runtime looks for it in
// the folder of the library it was loaded from).
const cudaProviderLib = "libonnxruntime_providers_cuda.so"

// Log lines of the CUDA fallback.
const (
	msgNoCUDABuild  = "CUDA not available with this ONNX Runtime build; using the CPU"
	msgCUDAFailed   = "CUDA could not start; using the CPU"
	msgCUDAAskedFor = "--device cuda, but this ONNX Runtime build has no CUDA (see README, GPU); using the CPU"
)

// logCUDAFallback says why a CUDA session could not be made and that the CPU runs. A CPU build
// of ONNX Runtime (the one `make deps` installs) is the everyday case with --device auto: one
// short line at info, ONNX Runtime's long error at debug. An explicit --device cuda warns; a
// GPU build that cannot start (no driver, no GPU, wrong CUDA) gives its reason at info or warn.
func logCUDAFallback(log *slog.Logger, opts Options, err error) {
	ctx := context.Background()
	log.Debug("CUDA execution provider failed", "device", string(opts.Device), "library", opts.LibraryPath, "err", err)
	level := slog.LevelInfo
	if opts.Device == DeviceCUDA {
		level = slog.LevelWarn
	}
	if !hasCUDAProvider(opts.LibraryPath) {
		msg := msgNoCUDABuild
		if opts.Device == DeviceCUDA {
			msg = msgCUDAAskedFor
		}
		log.Log(ctx, level, msg)
		return
	}
	log.Log(ctx, level, msgCUDAFailed, "device", string(opts.Device), "cuda_device", opts.CUDADevice, "err", err)
}

// hasCUDAProvider reports whether the ONNX Runtime library at libPath is a GPU build: its CUDA
// execution provider lies beside it (or beside the file a symbolic link points at).
func hasCUDAProvider(libPath string) bool {
	dirs := []string{filepath.Dir(libPath)}
	if real, err := filepath.EvalSymlinks(libPath); err == nil {
		dirs = append(dirs, filepath.Dir(real))
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, cudaProviderLib)); err == nil {
			return true
		}
	}
	return false
}

// readInfo reads the contract's metadata from the live session.
func readInfo(s *ort.DynamicAdvancedSession) (Info, error) {
	md, err := s.GetModelMetadata()
	if err != nil {
		return Info{}, fmt.Errorf("%w: metadata: %w", ErrContract, err)
	}
	defer func() { _ = md.Destroy() }()
	keys, err := md.GetCustomMetadataMapKeys()
	if err != nil {
		return Info{}, fmt.Errorf("%w: metadata: %w", ErrContract, err)
	}
	meta := make(map[string]string, len(keys))
	for _, k := range keys {
		v, _, err := md.LookupCustomMetadataMap(k)
		if err != nil {
			return Info{}, fmt.Errorf("%w: metadata %q: %w", ErrContract, k, err)
		}
		meta[k] = v
	}
	return parseInfo(meta)
}

// parseInfo checks and converts the contract's metadata keys.
func parseInfo(meta map[string]string) (Info, error) {
	info := Info{Metadata: meta, Temperature: 1, Description: meta["description"]}
	var errs []error
	need := func(key string) string {
		v, ok := meta[key]
		if !ok || v == "" {
			errs = append(errs, fmt.Errorf("%w: metadata key %q missing", ErrContract, key))
		}
		return v
	}
	if err := json.Unmarshal([]byte(need("classes")), &info.Classes); err != nil || len(info.Classes) < 2 {
		errs = append(errs, fmt.Errorf("%w: metadata classes must be a JSON list of at least 2 class ids", ErrContract))
	}
	if slices.Contains(info.Classes, "") {
		errs = append(errs, fmt.Errorf("%w: metadata classes holds an empty id", ErrContract))
	}
	for _, f := range []struct {
		key string
		dst *[3]float32
	}{{"mean", &info.Mean}, {"std", &info.Std}} {
		var v []float32
		if err := json.Unmarshal([]byte(need(f.key)), &v); err != nil || len(v) != 3 {
			errs = append(errs, fmt.Errorf("%w: metadata %s must be a JSON list of 3 numbers", ErrContract, f.key))
			continue
		}
		copy(f.dst[:], v)
	}
	for _, s := range info.Std {
		if s <= 0 && len(errs) == 0 {
			errs = append(errs, fmt.Errorf("%w: metadata std must be positive", ErrContract))
		}
	}
	atoi := func(key string, dst *int) {
		n, err := strconv.Atoi(need(key))
		if err != nil || n < 8 || n > 4096 {
			errs = append(errs, fmt.Errorf("%w: metadata %s must be an integer in 8..4096", ErrContract, key))
			return
		}
		*dst = n
	}
	atoi("input_size", &info.InputSize)
	atoi("resize_shorter", &info.ResizeShorter)
	if info.ResizeShorter < info.InputSize && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%w: resize_shorter %d < input_size %d", ErrContract, info.ResizeShorter, info.InputSize))
	}
	info.Version = need("model_version")
	for _, th := range []struct {
		key string
		dst *float64
	}{{notLeafThresholdKey, &info.NotLeafThreshold}, {unknownCropThresholdKey, &info.UnknownCropThreshold}} {
		t, ok := meta[th.key]
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(t, 64)
		if err != nil || !(v > 0 && v <= 1) { // NaN fails too
			errs = append(errs, fmt.Errorf("%w: metadata %s must be a number in (0, 1], not %q", ErrContract, th.key, t))
			continue
		}
		*th.dst = v
	}
	if t, ok := meta["temperature"]; ok {
		v, err := strconv.ParseFloat(t, 64)
		if err != nil || v <= 0 || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("%w: metadata temperature must be a positive number", ErrContract))
		} else {
			info.Temperature = v
		}
	}
	return info, errors.Join(errs...)
}

// warmUp runs one blank image to allocate buffers and to check the output shapes.
func (m *Model) warmUp(ctx context.Context) error {
	n := m.info.InputSize
	if _, err := m.Predict(ctx, make([]float32, 3*n*n), 1); err != nil {
		return err
	}
	m.info.CAMWidth, m.info.CAMHeight = m.camW, m.camH
	return nil
}

// Info describes the loaded model.
func (m *Model) Info() Info { return m.info }

// Predict runs a batch of n preprocessed inputs (n*3*InputSize*InputSize floats, see
// Info.Tensor) and returns each image's top classes with their heat-maps.
func (m *Model) Predict(ctx context.Context, batch []float32, n int) ([]Prediction, error) {
	out, err := m.Raw(ctx, batch, n)
	if err != nil {
		return nil, err
	}
	k := len(m.info.Classes)
	cell := len(out.CAM) / (n * k)
	preds := make([]Prediction, n)
	for i := range n {
		probs := Softmax(out.Logits[i*k:(i+1)*k], m.info.Temperature)
		top := TopClasses(probs, TopK)
		p := Prediction{Top: make([]Class, len(top)), Heatmaps: make([]Heatmap, len(top)), Probs: probs, IsLeaf: true, KnownCrop: true}
		if out.NotLeaf != nil {
			p.NotLeaf = float64(out.NotLeaf[i])
			p.IsLeaf = p.NotLeaf < m.info.NotLeafThreshold // NaN counts as not a leaf
		}
		if out.UnknownCrop != nil {
			p.UnknownCrop = float64(out.UnknownCrop[i])
			p.KnownCrop = p.UnknownCrop < m.info.UnknownCropThreshold // NaN counts as unknown
		}
		for j, c := range top {
			p.Top[j] = Class{Index: c, ID: m.info.Classes[c], Prob: probs[c]}
			off := (i*k + c) * cell
			p.Heatmaps[j] = normalizeCAM(out.CAM[off:off+cell], m.camW, m.camH)
		}
		preds[i] = p
	}
	return preds, nil
}

// Raw runs a batch and returns the model's outputs as they are, after checking their shapes:
// logits [n,K], cam [n,K,h,w] and the optional outputs the model has, not_leaf [n] and
// unknown_crop [n].
func (m *Model) Raw(ctx context.Context, batch []float32, n int) (Outputs, error) {
	if err := ctx.Err(); err != nil {
		return Outputs{}, err
	}
	side := m.info.InputSize
	if n < 1 || len(batch) != n*3*side*side {
		return Outputs{}, fmt.Errorf("predict: batch of %d floats is not %d images of 3x%dx%d", len(batch), n, side, side)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return Outputs{}, ErrClosed
	}
	in, err := ort.NewTensor(ort.NewShape(int64(n), 3, int64(side), int64(side)), batch)
	if err != nil {
		return Outputs{}, fmt.Errorf("%w: input tensor: %w", ErrRuntime, err)
	}
	defer func() { _ = in.Destroy() }()
	outs := make([]ort.Value, len(m.outputs))
	if err := m.session.Run([]ort.Value{in}, outs); err != nil {
		return Outputs{}, fmt.Errorf("%w: run: %w", ErrRuntime, err)
	}
	defer func() {
		for _, o := range outs {
			if o != nil {
				_ = o.Destroy()
			}
		}
	}()
	lt, ok1 := outs[0].(*ort.Tensor[float32])
	ct, ok2 := outs[1].(*ort.Tensor[float32])
	if !ok1 || !ok2 {
		return Outputs{}, fmt.Errorf("%w: outputs are not float32 tensors", ErrContract)
	}
	k := len(m.info.Classes)
	ls, cs := lt.GetShape(), ct.GetShape()
	if len(ls) != 2 || ls[0] != int64(n) || ls[1] != int64(k) {
		return Outputs{}, fmt.Errorf("%w: logits shape %v, want [%d %d] (metadata lists %d classes)", ErrContract, ls, n, k, k)
	}
	if len(cs) != 4 || cs[0] != int64(n) || cs[1] != int64(k) || cs[2] < 1 || cs[3] < 1 ||
		(m.camW > 0 && (cs[2] != int64(m.camH) || cs[3] != int64(m.camW))) {
		return Outputs{}, fmt.Errorf("%w: cam shape %v, want [%d %d h w]", ErrContract, cs, n, k)
	}
	res := Outputs{Logits: slices.Clone(lt.GetData()), CAM: slices.Clone(ct.GetData())}
	for i, name := range m.outputs[2:] {
		t, ok := outs[2+i].(*ort.Tensor[float32])
		if !ok {
			return Outputs{}, fmt.Errorf("%w: output %q is not a float32 tensor", ErrContract, name)
		}
		if s := t.GetShape(); !slices.Equal(s, ort.NewShape(int64(n))) {
			return Outputs{}, fmt.Errorf("%w: output %q has shape %v, want [%d] (one score per image)", ErrContract, name, s, n)
		}
		v := slices.Clone(t.GetData())
		switch name {
		case NotLeafName:
			res.NotLeaf = v
		case UnknownCropName:
			res.UnknownCrop = v
		}
	}
	if m.camW == 0 { // the warm-up run, before the model is shared
		m.camH, m.camW = int(cs[2]), int(cs[3])
	}
	return res, nil
}

// Softmax turns logits into probabilities, dividing them by temperature first.
func Softmax(logits []float32, temperature float64) []float64 {
	if temperature <= 0 {
		temperature = 1
	}
	out := make([]float64, len(logits))
	maxV := math.Inf(-1)
	for _, l := range logits {
		maxV = math.Max(maxV, float64(l)/temperature)
	}
	var sum float64
	for i, l := range logits {
		out[i] = math.Exp(float64(l)/temperature - maxV)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// TopClasses returns the indices of the k largest probabilities, largest first (ties: lower index).
func TopClasses(probs []float64, k int) []int {
	idx := make([]int, len(probs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case probs[a] > probs[b]:
			return -1
		case probs[a] < probs[b]:
			return 1
		}
		return 0
	})
	return idx[:min(k, len(idx))]
}

// normalizeCAM applies ReLU and scales the map to 0..1 (all zeros if nothing is positive).
func normalizeCAM(raw []float32, w, h int) Heatmap {
	out := Heatmap{W: w, H: h, V: make([]float32, len(raw))}
	var maxV float32
	for _, v := range raw {
		if v > maxV && !math.IsInf(float64(v), 0) { // NaN compares false: skipped
			maxV = v
		}
	}
	if maxV <= 0 {
		return out
	}
	for i, v := range raw {
		if v > 0 && v <= maxV { // NaN, ±Inf and negatives count as cold
			out.V[i] = v / maxV
		}
	}
	return out
}

// Close destroys the session and releases the runtime; it waits for runs in flight and joins
// every cleanup error. Calling it again is a no-op.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	start := time.Now()
	err := errors.Join(m.destroySessionLocked(), releaseRuntime())
	m.log.Info("model closed", "model_version", m.info.Version, "took", time.Since(start))
	return err
}

func (m *Model) destroySession() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.destroySessionLocked()
}

func (m *Model) destroySessionLocked() error {
	if m.session == nil {
		return nil
	}
	err := m.session.Destroy()
	m.session = nil
	if err != nil {
		return fmt.Errorf("%w: destroy session: %w", ErrRuntime, err)
	}
	return nil
}
