# CropShield. `make run` serves the web chat on http://127.0.0.1:8080 with the embedded defaults;
# `make test` is what CI runs.
SHELL := /bin/bash
ORT_LIB := $(CURDIR)/.cache/onnxruntime/libonnxruntime.so.1
export CROPSHIELD_ORT_LIB ?= $(ORT_LIB)
GO ?= go
# TESTFLAGS go to every go test of `make test` (CI: -count=1, so that no cached result hides a skip).
TESTFLAGS ?=
# Each go test of `make test` prints as usual, then how many tests passed, failed and were skipped
# and why each skipped (scripts/testsummary); pipefail keeps go test's exit status.
SUMMARY := | $(GO) run ./scripts/testsummary
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: deps run build test bench bench-go killtest lint fmt clean

## deps: fetch the pinned, checksum-verified ONNX Runtime library (npm package onnxruntime-node)
deps: $(ORT_LIB)
$(ORT_LIB): scripts/fetch-ort.sh
	./scripts/fetch-ort.sh

## build: the cropshield binary in bin/
build:
	$(GO) build -o bin/cropshield ./cmd/cropshield

## run: serve the web chat on 127.0.0.1:8080 (no tokens needed)
run: deps build
	./bin/cropshield serve

## test: vet, then every test with the race detector; then the store's tests again on PostgreSQL
## (a server from Debian's postgresql package, started by the tests: internal/pgtest), the
## inference tests again with Go's JPEG codec instead of libjpeg-turbo, and the codec package
## without cgo at all; each ends with a line of passed, failed and skipped tests and the reasons
## for the skips
test: deps
	$(GO) vet ./...
	set -o pipefail; $(GO) test -json -race -timeout 30m $(TESTFLAGS) ./... $(SUMMARY)
	@echo "== the store's tests on PostgreSQL (CROPSHIELD_STORE_BACKEND=postgres)"
	set -o pipefail; CROPSHIELD_STORE_BACKEND=postgres $(GO) test -json -race -timeout 30m $(TESTFLAGS) ./store/ $(SUMMARY)
	set -o pipefail; $(GO) test -json -tags noturbojpeg -timeout 30m $(TESTFLAGS) ./inference/... $(SUMMARY)
	CGO_ENABLED=0 $(GO) test $(TESTFLAGS) ./inference/imagecodec/

## bench: cropshield bench — every stage, the whole handler, photos/s, peak RSS (README's Speed)
bench: deps build
	./bin/cropshield bench

## bench-go: the Go benchmarks of every package
bench-go: deps
	$(GO) test -run '^$$' -bench . -benchmem ./...

## killtest: kill -9 under load: serve is killed 10 times while a fake Telegram Bot API and web chat
## clients send 760 messages (mostly photos); fails if any is lost or answered twice
## (scripts/killtest; KILLTEST_FLAGS="--seed 2 --kills 20" for another run; several replicas on
## PostgreSQL, Telegram by webhook: KILLTEST_FLAGS="--replicas 3 --db postgres --pg-url postgres://…")
KILLTEST_FLAGS ?=
killtest: deps build
	$(GO) run ./scripts/killtest --bin bin/cropshield $(KILLTEST_FLAGS)

## lint: gofmt and staticcheck
lint:
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) run $(STATICCHECK) ./...

clean:
	rm -rf bin .cache
