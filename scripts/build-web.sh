#!/usr/bin/env bash
# Builds the browser simulation: the distribkv-wasm crate (release, for
# wasm32-unknown-unknown) through `wasm-bindgen --target web` into
#   web/pkg/distribkv_wasm.js and web/pkg/distribkv_wasm_bg.wasm
# Installs what it needs (the wasm32 target, the wasm-bindgen CLI of the
# version Cargo.lock pins). Idempotent; prints nothing unless something fails.
set -euo pipefail
cd "$(dirname "$0")/.."

# Runs a command, showing its output only if it fails.
quiet() {
  local log
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    echo "build-web: '$*' failed:" >&2
    cat "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

if command -v rustup >/dev/null 2>&1 &&
  ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  quiet rustup target add wasm32-unknown-unknown
fi

# The CLI must match the wasm-bindgen crate exactly.
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ -z "$version" ]; then
  echo "build-web: no wasm-bindgen in Cargo.lock" >&2
  exit 1
fi
if ! command -v wasm-bindgen >/dev/null 2>&1 ||
  [ "$(wasm-bindgen --version | awk '{ print $2 }')" != "$version" ]; then
  quiet cargo install wasm-bindgen-cli --version "$version"
fi

quiet cargo build --release -p distribkv-wasm --target wasm32-unknown-unknown
target_dir=$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
mkdir -p web/pkg
quiet wasm-bindgen --target web --out-dir web/pkg \
  "$target_dir/wasm32-unknown-unknown/release/distribkv_wasm.wasm"
