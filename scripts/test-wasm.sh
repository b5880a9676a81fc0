#!/usr/bin/env bash
# Every wasm test: the core's tests on wasm32 in Node (through cargo's
# runner and through wasm-pack), the wasm crate's tests in headless
# Chromium, and the built package's JS API in Node. Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }

ensure_rust_targets
ensure_wasm_bindgen
ensure_wasm_pack
ensure_chromium
ensure_node

step "core tests on wasm32 in Node (wasm-bindgen-test-runner)"
cargo test -p distribkv-core --features sim --target wasm32-unknown-unknown

step "core tests on wasm32 in Node (wasm-pack)"
wasm-pack test --node core --features sim

step "wasm crate: browser.rs in headless Chromium, sharded_node.rs in Node"
CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}" \
  cargo test -p distribkv-wasm --target wasm32-unknown-unknown

step "build web/pkg"
scripts/build-web.sh

step "the built package's JS API in Node"
node --test wasm/tests/js/
