#!/usr/bin/env bash
# Builds the browser simulation: the distribkv-wasm crate (release, for
# wasm32-unknown-unknown) through `wasm-bindgen --target web` into
#   web/pkg/distribkv_wasm.js and web/pkg/distribkv_wasm_bg.wasm
# Installs what it needs (the wasm32 target, the wasm-bindgen CLI of the
# version Cargo.lock pins). Idempotent; prints nothing unless it installs
# something or fails.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# Runs a command, showing its output only if it fails.
quiet() {
  local log status=0
  log=$(mktemp)
  "$@" >"$log" 2>&1 || status=$?
  if [ "$status" != 0 ]; then
    echo "build-web: '$*' failed:" >&2
    cat "$log" >&2
  fi
  rm -f "$log"
  return "$status"
}

ensure_rust_targets
ensure_wasm_bindgen

quiet cargo build --release -p distribkv-wasm --target wasm32-unknown-unknown
target_dir=$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
mkdir -p web/pkg
quiet wasm-bindgen --target web --out-dir web/pkg \
  "$target_dir/wasm32-unknown-unknown/release/distribkv_wasm.wasm"
