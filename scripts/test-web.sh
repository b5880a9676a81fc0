#!/usr/bin/env bash
# The page's end-to-end tests: builds the wasm (release) into web/pkg/,
# makes sure Chromium and the test packages are there, then drives Debian's
# Chromium headless (playwright-core) against web/ served on a free port:
#
#   0. the guided tours walked in Node against web/pkg (scripts/e2e/tours.mjs),
#      a quick check that every step's claims hold, before any browser;
#   1. the suite against the real build (scripts/e2e/tests/page.test.mjs,
#      the single-group mode, and sharded.test.mjs, the sharded mode), after
#      checkpoints.test.mjs (the timelines' checkpoints, in Node);
#   2. a smoke test in Debian's Firefox ESR (scripts/e2e/tests/firefox.test.mjs,
#      puppeteer-core over WebDriver BiDi): loads, elects, crashes, puts.
#
# The page only ever runs the real simulator: there is no other backend.
# A failing test saves a screenshot in scripts/e2e/artifacts/. Works as root,
# without a display, with CI=true. E2E_TIMEOUT (seconds, default 1200)
# bounds the whole real-build suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }
started=$SECONDS

step "build web/pkg (release)"
scripts/build-web.sh

step "Chromium, Firefox and the test packages"
ensure_chromium
ensure_firefox
ensure_e2e_packages
export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"

artifacts=scripts/e2e/artifacts
rm -rf "$artifacts"
status=0

# Runs test files, one after the other, with one time limit for them all;
# node's own test runner reports.
run_tests() {
  local limit=$1
  shift
  (cd scripts/e2e && timeout --kill-after=15 "$limit" \
    node --test --test-concurrency=1 --test-reporter=spec "$@") || {
    local code=$?
    [ "$code" = 124 ] && echo "test-web: $* did not finish within ${limit} s" >&2
    return "$code"
  }
}

step "guided tours in Node: every step's claims hold in the real simulator"
(cd scripts/e2e && timeout 300 node tours.mjs) || status=1

step "end-to-end tests against the real build"
run_tests "${E2E_TIMEOUT:-1200}" tests/checkpoints.test.mjs tests/page.test.mjs tests/sharded.test.mjs || status=1

step "the page in Firefox (firefox-esr over WebDriver BiDi)"
run_tests 300 tests/firefox.test.mjs || status=1

if [ "$status" != 0 ]; then
  if [ -d "$artifacts" ]; then
    echo >&2
    echo "test-web: screenshots of the failures:" >&2
    find "$artifacts" -name '*.png' | sort | sed 's/^/  /' >&2
  fi
  echo "test-web: FAILED after $((SECONDS - started)) s" >&2
  exit 1
fi
printf '\nthe page'"'"'s end-to-end tests passed in %d s\n' $((SECONDS - started))
