// Node entry: Node's fetch cannot read file: URLs, so the wasm bytes are read from disk and the
// module is ready as soon as the import resolves. `ready()` still works (and resolves at once).
import { readFile } from 'node:fs/promises';
import { ready } from './core.js';

await ready(await readFile(new URL('./wasm/cardseal_bg.wasm', import.meta.url)));

export * from './core.js';
