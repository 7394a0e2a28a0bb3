// Before ready() resolves, every export fails loudly rather than answering wrong.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import test from 'node:test';

// The browser entry, which (unlike the Node entry) does not load the wasm on import.
import * as cardseal from '../../pkg/index.js';

// A port nothing listens on: one the system just handed out and took back.
function closedPort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

test('calls before ready() throw not_ready; after it they work', async () => {
  for (const fn of ['validateNumber', 'validateExpiry', 'validateCvc', 'validateCard', 'formatCardNumber', 'formatExpiry']) {
    assert.throws(() => cardseal[fn]('4242'), (e) => e instanceof cardseal.CardSealError && e.code === 'not_ready', fn);
  }
  // A bad source rejects with a CardSealError, and a later good call still succeeds.
  await assert.rejects(cardseal.ready(new Uint8Array([0, 1, 2])), (e) => e.code === 'wasm_load_failed');
  // So does a wasm that cannot be fetched: nothing listens on the port, or it answers 404.
  const closed = await closedPort();
  await assert.rejects(cardseal.ready(new URL(`http://127.0.0.1:${closed}/cardseal_bg.wasm`)),
    (e) => e instanceof cardseal.CardSealError && e.code === 'network_error' && e.type === 'api_connection_error');
  const server = http.createServer((req, res) => { res.writeHead(404); res.end(); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  try {
    await assert.rejects(cardseal.ready(`http://127.0.0.1:${server.address().port}/cardseal_bg.wasm`),
      (e) => e.code === 'network_error' && e.status === 404);
  } finally {
    server.close();
  }
  await cardseal.ready(await readFile(new URL('../../pkg/wasm/cardseal_bg.wasm', import.meta.url)));
  assert.equal(cardseal.validateNumber('4242424242424242').isValid, true);
});
