#!/usr/bin/env bash
# Where the shipped wasm's bytes go, per crate: the wasm as `npm run build` ships it (after
# wasm-bindgen and wasm-opt -Oz), but with its function names kept for twiggy.
#   bash scripts/wasm-sizes.sh [RAW.wasm ...]   (default: target/wasm32-unknown-unknown/wasm/cardseal.wasm)
# Needs twiggy (`cargo install twiggy`). Two or more files give a side-by-side table.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="$root/node_modules/.bin:$HOME/.cargo/bin:$PATH"
command -v twiggy >/dev/null || cargo install twiggy
[ "$#" -gt 0 ] || set -- "$root/target/wasm32-unknown-unknown/wasm/cardseal.wasm"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
outs=()
for raw in "$@"; do
  name=$(basename "$raw" .wasm)
  mkdir -p "$tmp/$name"
  wasm-bindgen --target web --out-dir "$tmp/$name" --out-name cardseal --no-typescript --keep-debug "$raw"
  wasm-opt -Oz --debuginfo --enable-reference-types --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-multivalue "$tmp/$name/cardseal_bg.wasm" -o "$tmp/$name.wasm"
  outs+=("$tmp/$name.wasm")
done
python3 "$root/scripts/wasm-crates.py" "${outs[@]}"
