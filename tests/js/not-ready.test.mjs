// Before ready() resolves, every export fails loudly rather than answering wrong.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import test from 'node:test';

// The browser entry, which (unlike the Node entry) does not load the wasm on import.
import * as cardseal from '../../pkg/index.js';

test('calls before ready() throw not_ready; after it they work', async () => {
  for (const fn of ['validateNumber', 'validateExpiry', 'validateCvc', 'validateCard', 'formatCardNumber', 'formatExpiry']) {
    assert.throws(() => cardseal[fn]('4242'), (e) => e instanceof cardseal.CardSealError && e.code === 'not_ready', fn);
  }
  // A bad source rejects with a CardSealError, and a later good call still succeeds.
  await assert.rejects(cardseal.ready(new Uint8Array([0, 1, 2])), (e) => e.code === 'wasm_load_failed');
  await cardseal.ready(await readFile(new URL('../../pkg/wasm/cardseal_bg.wasm', import.meta.url)));
  assert.equal(cardseal.validateNumber('4242424242424242').isValid, true);
});
