#!/usr/bin/env bash
# `npm test`: installs what is missing, then every check CI runs, in order of speed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# Chromium and geckodriver are found on PATH; the runner reads webdriver.json for their flags.
export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"

step() { printf '\n== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy (host, -D warnings)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "clippy (wasm32, -D warnings)"
cargo clippy -p cardseal --target wasm32-unknown-unknown --lib --test web --quiet -- -D warnings

step "native tests"
cargo test --workspace --quiet

step "vault tests on PostgreSQL: the whole vault suite again, plus two instances on one database"
if bash scripts/pg.sh bindir >/dev/null 2>&1; then
  pg_dir=$(mktemp -d)
  trap 'bash scripts/pg.sh stop "$pg_dir" >/dev/null 2>&1 || true; rm -rf "$pg_dir"' EXIT
  pg_url=$(bash scripts/pg.sh start "$pg_dir")
  CARDSEAL_TEST_DATABASE_URL="$pg_url" cargo test -p cardseal-vault --quiet
  bash scripts/pg.sh stop "$pg_dir"
else
  printf '\n!!! SKIPPING PostgreSQL: the postgresql package is missing and could not be installed;\n' >&2
  printf '!!! the vault was tested on SQLite only.\n\n' >&2
fi

step "build the npm package"
node scripts/build.mjs

step "build cardseal-vault (the browser and end-to-end tests start it)"
cargo build --quiet -p cardseal-vault

step "the OpenAPI contract against a live vault: schemathesis with the sk, pk and rk keys (bounded, stateful)"
node tests/schemathesis/run.mjs

step "browser tests: wasm-bindgen-test in headless Chrome and Firefox, the vault client against a vault, a silent server and a flaky proxy on 127.0.0.1 (started and stopped around it), in a page and in a worker"
node tests/support/with-servers.mjs -- wasm-pack test --headless --chrome --firefox -- --test web --test web_vault --test web_worker

step "tsc --noEmit on a TypeScript user of every export"
tsc --noEmit -p tests/ts

step "JS tests: the package in Node and in headless Chromium"
node --test tests/js/

step "end-to-end: the demo shop with a real vault, in headless Chromium, Firefox and WebKit (Xvfb); accessibility (axe); the integration walkthrough"
node --test tests/e2e/
