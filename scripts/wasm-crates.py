#!/usr/bin/env python3
"""Bytes per crate in a wasm with names (target/wasm32-unknown-unknown/wasm/cardseal.wasm,
before wasm-bindgen and wasm-opt), from `twiggy top --format csv`. Usage:
  python3 scripts/wasm-crates.py FILE.wasm [FILE2.wasm]   (two files: a before/after table)"""
import csv, io, re, subprocess, sys
from collections import defaultdict

KNOWN = ['cardseal', 'serde_wasm_bindgen', 'wasm_bindgen_futures', 'wasm_bindgen', 'js_sys', 'web_sys',
         'serde_json', 'serde_core', 'serde', 'aes_gcm', 'aes', 'polyval', 'ghash', 'cipher', 'ctr', 'sha2',
         'digest', 'base64ct', 'dlmalloc', 'der', 'pem_rfc7468', 'pkcs1', 'pkcs8', 'spki', 'rsa',
         'crypto_bigint', 'getrandom', 'zeroize', 'subtle', 'alloc', 'core', 'std', 'memchr', 'itoa', 'ryu',
         'zmij', 'universal_hash', 'crypto_common', 'aead', 'block_buffer', 'inout', 'const_oid', 'talc', 'lol_alloc']
GROUP = {'serde_core': 'serde', 'aes_gcm': 'aes/gcm/polyval', 'aes': 'aes/gcm/polyval', 'polyval': 'aes/gcm/polyval',
         'ghash': 'aes/gcm/polyval', 'cipher': 'aes/gcm/polyval', 'ctr': 'aes/gcm/polyval', 'universal_hash': 'aes/gcm/polyval',
         'aead': 'aes/gcm/polyval', 'inout': 'aes/gcm/polyval', 'crypto_common': 'aes/gcm/polyval',
         'digest': 'sha2', 'block_buffer': 'sha2', 'der': 'der/pem/pkcs', 'pem_rfc7468': 'der/pem/pkcs', 'pkcs1': 'der/pem/pkcs',
         'pkcs8': 'der/pem/pkcs', 'spki': 'der/pem/pkcs', 'const_oid': 'der/pem/pkcs', 'core': 'core/alloc/std',
         'alloc': 'core/alloc/std', 'std': 'core/alloc/std', 'js_sys': 'wasm-bindgen/js-sys/web-sys/futures',
         'web_sys': 'wasm-bindgen/js-sys/web-sys/futures', 'wasm_bindgen': 'wasm-bindgen/js-sys/web-sys/futures',
         'wasm_bindgen_futures': 'wasm-bindgen/js-sys/web-sys/futures', 'itoa': 'serde_json', 'ryu': 'serde_json', 'zmij': 'serde_json',
         'memchr': 'serde_json'}
pat = re.compile(r'(?<![A-Za-z0-9_])(' + '|'.join(sorted(KNOWN, key=len, reverse=True)) + r')(?:\[[0-9a-f]+\])?::')

def crates(path):
    out = subprocess.run(['twiggy', 'top', '-n', '1000000', '--format', 'csv', path], capture_output=True, text=True, check=True).stdout
    sizes = defaultdict(int)
    for row in csv.DictReader(io.StringIO(out)):
        name, size = row['Name'], int(row['ShallowSize'])
        if name.startswith('custom section') or 'subsection' in name or name.startswith('Σ') or name.startswith('...'):
            continue
        if name.startswith('data segment'):
            sizes['rodata and data'] += size; continue
        if name.startswith('import ') or name.startswith('export ') or name in ('table[0]', 'memory[0]') or name.startswith('global') or name.startswith('elem') or name.startswith('type['):
            sizes['imports, exports, tables'] += size; continue
        m = pat.search(name)
        key = GROUP.get(m.group(1), m.group(1)) if m else 'exports and shims (cardseal code inlined)'
        # Generic code is named after the crate whose function it is; trait impls `<X as Y>`
        # go to the implementing type's crate, as `pat.search` finds it first.
        sizes[key] += size
    return sizes

files = sys.argv[1:]
tables = [crates(f) for f in files]
keys = sorted(set().union(*tables), key=lambda k: -tables[0].get(k, 0))
w = max(len(k) for k in keys)
print(f"{'crate':<{w}} " + ' '.join(f'{f.split("/")[-1]:>12}' for f in files))
for k in keys:
    print(f"{k:<{w}} " + ' '.join(f'{t.get(k, 0):>12,}' for t in tables))
print(f"{'total code+data':<{w}} " + ' '.join(f'{sum(t.values()):>12,}' for t in tables))
