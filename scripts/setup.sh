#!/usr/bin/env bash
# Installs every tool `npm start`, `npm test` and `npm run bench` need, and only what is missing,
# so a second run takes about a second. Recipes: see TOOLCHAIN notes in README ("Set-up").
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The CLI must equal the wasm-bindgen crate in Cargo.lock, or the runner refuses the test binary.
wb_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock 2>/dev/null
}

need_browsers=1
need_wasm=1
for arg in "$@"; do
  case "$arg" in
    --no-browsers) need_browsers=0 ;;
    --no-wasm) need_wasm=0 ;;
  esac
done

export PATH="$HOME/.cargo/bin:$PATH"

if [ "$need_wasm" = 1 ]; then
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  for c in clippy rustfmt; do
    rustup component list --installed | grep -q "^$c" || rustup component add "$c"
  done

  [ -f Cargo.lock ] || cargo generate-lockfile
  want=$(wb_version)
  have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
  if [ "$have" != "$want" ]; then
    log "installing wasm-bindgen-cli $want (about 3 min)"
    # No --locked: the registry mirror lags behind the CLI's own lock file.
    cargo install wasm-bindgen-cli --version "=$want" --force
  fi
  if ! command -v wasm-pack >/dev/null; then
    log "installing wasm-pack (about 2 min)"
    cargo install wasm-pack
  fi
fi

if [ "$need_browsers" = 1 ]; then
  missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
  command -v firefox-esr >/dev/null || command -v firefox >/dev/null || missing+=(firefox-esr)
  command -v openssl >/dev/null || missing+=(openssl)
  # WebKit (Safari's engine): WebKitWebDriver and MiniBrowser, which needs a virtual display.
  command -v WebKitWebDriver >/dev/null || missing+=(webkit2gtk-driver)
  command -v Xvfb >/dev/null || missing+=(xvfb)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]} from Debian"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if ! command -v geckodriver >/dev/null; then
    log "installing geckodriver (about 2 min)"
    cargo install geckodriver
  fi
fi

# schemathesis, for the contract test against a live vault (tests/schemathesis/run.mjs), and
# stripe-python, for the test of Stripe's own libraries against the vault
# (tests/e2e/stripe.test.mjs), in a virtual environment of their own. Pinned: a new release may
# add checks that change the verdict, or change what the library sends.
SCHEMATHESIS_VERSION=4.32.5
STRIPE_PYTHON_VERSION=16.1.0
if [ "$(.venv/bin/schemathesis --version 2>/dev/null | awk '{print $NF}')" != "$SCHEMATHESIS_VERSION" ] ||
   [ "$(.venv/bin/python -c 'import stripe; print(stripe.VERSION)' 2>/dev/null)" != "$STRIPE_PYTHON_VERSION" ]; then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    log "installing python3-venv from Debian"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-venv >/dev/null
  fi
  log "installing schemathesis $SCHEMATHESIS_VERSION and stripe $STRIPE_PYTHON_VERSION into .venv/ (about 1 min)"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" \
    "stripe==$STRIPE_PYTHON_VERSION"
fi

# PostgreSQL for the vault's second test run (scripts/pg.sh starts a throwaway cluster). If it
# cannot be installed, `npm test` says so loudly and tests on SQLite only.
if [ "$need_browsers" = 1 ] && ! bash scripts/pg.sh bindir >/dev/null 2>&1; then
  log "installing postgresql from Debian (for the vault tests on PostgreSQL)"
  if ! { as_root apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >/dev/null; }; then
    log "!!! could not install postgresql: npm test will skip the PostgreSQL run"
  fi
fi

# npm 11 skips install scripts; binaryen (wasm-opt) and esbuild ship their code in the package.
if [ ! -d node_modules ] || [ package.json -nt node_modules/.package-lock.json ] ||
   { [ -f package-lock.json ] && [ package-lock.json -nt node_modules/.package-lock.json ]; }; then
  log "installing npm dev dependencies"
  npm install --no-audit --no-fund --loglevel=error
fi
