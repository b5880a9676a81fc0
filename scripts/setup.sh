#!/usr/bin/env bash
# Installs what distribKV's build and tests need, when it is missing.
# Sourced by the other scripts; every function is idempotent.

# Runs a command as root (directly when already root, else through sudo).
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Rust targets for the browser build and the no_std proof build.
ensure_rust_targets() {
    local installed
    installed=$(rustup target list --installed)
    for target in wasm32-unknown-unknown thumbv7em-none-eabihf; do
        if ! grep -qx "$target" <<<"$installed"; then
            echo "==> installing Rust target $target"
            rustup target add "$target"
        fi
    done
}

# The wasm-bindgen version pinned in Cargo.lock (the CLI must match it exactly).
wasm_bindgen_version() {
    awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

ensure_wasm_bindgen() {
    local want have
    want=$(wasm_bindgen_version)
    have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
    if [ "$have" != "$want" ]; then
        echo "==> installing wasm-bindgen-cli $want (a few minutes, once)"
        cargo install wasm-bindgen-cli --version "$want"
    fi
}

ensure_wasm_pack() {
    if ! command -v wasm-pack >/dev/null 2>&1; then
        echo "==> installing wasm-pack (a few minutes, once)"
        cargo install wasm-pack --locked
    fi
}

# Debian's Chromium and ChromeDriver, for browser tests.
ensure_chromium() {
    if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
        echo "==> installing chromium and chromium-driver"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    fi
}

# Debian's Firefox ESR, for the page's Firefox smoke test.
ensure_firefox() {
    if ! command -v firefox-esr >/dev/null 2>&1; then
        echo "==> installing firefox-esr"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq firefox-esr >/dev/null
    fi
}

# Node.js and npm, for the page's tests.
ensure_node() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        echo "==> installing nodejs and npm"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    fi
}

# iproute2 and iptables, for the fault tests across network namespaces
# (they create namespaces and cut links with iptables rules).
ensure_netns_tools() {
    if ! command -v ip >/dev/null 2>&1 || ! command -v iptables >/dev/null 2>&1; then
        echo "==> installing iproute2 and iptables"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 iptables >/dev/null
    fi
}

# npm packages of the end-to-end tests (playwright-core only; no browser download).
ensure_e2e_packages() {
    ensure_node
    if [ ! -d scripts/e2e/node_modules/playwright-core ] || [ ! -d scripts/e2e/node_modules/puppeteer-core ]; then
        echo "==> installing the end-to-end test packages"
        (cd scripts/e2e && npm ci --no-audit --no-fund --loglevel=error)
    fi
}
