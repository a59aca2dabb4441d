#!/usr/bin/env bash
# Fetches the ONNX Runtime shared library (CPU build, linux-x64) from the npm registry package
# onnxruntime-node at a pinned version, verifies the package and the library against pinned SHA-256
# checksums, and installs the one file into .cache/onnxruntime/. Idempotent: a verified library
# already in place is left alone.
set -euo pipefail

ORT_VERSION=1.30.0
TGZ_SHA256=6e3390d6b783e7be946fad629292799da28d0b42f84856e50d2c1b0383291e75
LIB_SHA256=ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23
LIB_IN_TGZ=package/bin/napi-v6/linux/x64/libonnxruntime.so.1

root=$(cd "$(dirname "$0")/.." && pwd)
dest_dir="$root/.cache/onnxruntime"
dest="$dest_dir/libonnxruntime.so.1"

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "fetch-ort: only linux-x64 is packaged here; point CROPSHIELD_ORT_LIB at an ONNX Runtime >= 1.24 library for $(uname -s)-$(uname -m)" >&2
  exit 1
fi

if [ -f "$dest" ] && echo "$LIB_SHA256  $dest" | sha256sum -c --status; then
  exit 0
fi

command -v npm >/dev/null || { echo "fetch-ort: npm is needed to fetch onnxruntime-node@$ORT_VERSION (apt-get install npm)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-ort: fetching onnxruntime-node@$ORT_VERSION from the npm registry (about 110 MB, cached by npm afterwards)" >&2
(cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null)
tgz="$tmp/onnxruntime-node-$ORT_VERSION.tgz"
echo "$TGZ_SHA256  $tgz" | sha256sum -c --status || {
  echo "fetch-ort: checksum mismatch for onnxruntime-node-$ORT_VERSION.tgz: refusing to use it" >&2; exit 1; }
tar -xzf "$tgz" -C "$tmp" "$LIB_IN_TGZ"
echo "$LIB_SHA256  $tmp/$LIB_IN_TGZ" | sha256sum -c --status || {
  echo "fetch-ort: checksum mismatch for $LIB_IN_TGZ: refusing to use it" >&2; exit 1; }
mkdir -p "$dest_dir"
install -m 0644 "$tmp/$LIB_IN_TGZ" "$dest.tmp"
mv "$dest.tmp" "$dest"
echo "fetch-ort: installed ONNX Runtime $ORT_VERSION at $dest" >&2
