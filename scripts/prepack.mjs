// `prepack`: npm runs this before `npm pack` and `npm publish`. pkg/ is built, not committed, so
// a fresh clone has none: build it here (incrementally, as `npm run build` does), or stop with
// a message that says what is missing. Packing a package without its wasm must never succeed.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const home = process.env.HOME ?? '';
// Where scripts/setup.sh puts the Rust tools.
process.env.PATH = [join(home, '.cargo/bin'), process.env.PATH].join(delimiter);

const onPath = (name) => process.env.PATH.split(delimiter).some((d) => d && existsSync(join(d, name)));

function fail(message) {
  process.stderr.write(`\ncardseal prepack: ${message}\n` +
    'The package ships the built wasm in pkg/, and pkg/ is not in git. Build it first:\n' +
    '  npm run build      # installs what is missing (Rust wasm32 target, wasm-bindgen, npm tools), then builds pkg/\n' +
    'then pack or install again.\n\n');
  process.exit(1);
}

const missing = [];
if (!onPath('cargo')) missing.push('cargo (Rust)');
if (!onPath('wasm-bindgen')) missing.push('wasm-bindgen');
if (!existsSync(join(root, 'node_modules/.bin/wasm-opt'))) missing.push('wasm-opt (npm install, the binaryen devDependency)');
if (!existsSync(join(root, 'node_modules/esbuild'))) missing.push('esbuild (npm install)');
if (missing.length) fail(`cannot build pkg/: missing ${missing.join(', ')}.`);

try {
  execFileSync(process.execPath, [join(root, 'scripts/build.mjs'), '--quiet'], { cwd: root, stdio: 'inherit' });
} catch (e) {
  fail(`the build failed (${e.status ?? e.message}).`);
}

const needed = ['pkg/index.js', 'pkg/node.js', 'pkg/index.d.ts', 'pkg/wasm/cardseal_bg.wasm', 'pkg/snippet/cardseal.js'];
const absent = needed.filter((f) => !existsSync(join(root, f)));
if (absent.length) fail(`the build did not produce ${absent.join(', ')}.`);
