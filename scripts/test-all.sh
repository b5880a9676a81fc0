#!/usr/bin/env bash
# Sets up everything distribKV needs and runs every test: formatting, lints,
# the no_std and wasm32 builds, the core's unit, scenario, lab and seed-sweep
# tests, the native multi-process tests, the wasm tests in Node and headless
# Chromium, and the page's end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

step() { printf '\n==> %s\n' "$*"; }
started=$SECONDS

ensure_rust_targets

step "formatting"
cargo fmt --all -- --check

step "lints"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "documentation (broken links are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --quiet

step "no_std build of the core (thumbv7em-none-eabihf)"
cargo build -p distribkv-core --no-default-features --target thumbv7em-none-eabihf

step "wasm32 build of the core and its simulator"
cargo build -p distribkv-core --no-default-features --features sim --target wasm32-unknown-unknown

step "tests (core, native)"
# The fault tests across network namespaces get a step of their own.
cargo test --workspace --all-features -- --skip across_hosts::

step "fault tests across network namespaces"
ensure_netns_tools
cargo test -p distribkv-native --test faults -- --test-threads=1 --nocapture

step "seed sweep: ${DISTRIBKV_SEEDS:=10000} seeds with faults (release)"
DISTRIBKV_SEEDS=$DISTRIBKV_SEEDS cargo test --release -p distribkv-core --features sim --test sweep

step "sharded seed sweep: ${DISTRIBKV_SHARD_SEEDS:=1000} seeds of joins, leaves and moves under faults (release)"
DISTRIBKV_SHARD_SEEDS=$DISTRIBKV_SHARD_SEEDS cargo test --release -p distribkv-core --features sim --test shard_sweep

step "wasm: core on wasm32 (Node), the wasm crate in headless Chromium, the JS API of web/pkg"
scripts/test-wasm.sh

step "the page: end-to-end tests in headless Chromium against the real build"
scripts/test-web.sh

printf '\nall tests passed in %d s\n' $((SECONDS - started))
