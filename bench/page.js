// The benchmark's in-page half. bench/run.mjs calls `window.bench.*` through page.evaluate.
import * as cardseal from '/pkg/index.js';
import { number as cardValidatorNumber } from '/out/card-validator.js';

import { generateNumbers } from './numbers.js';

// One timed pass over every number. Counting the valid ones keeps the calls from being
// optimized away, and lets run.mjs compare what each library concluded.
function pass(validate, numbers) {
  let valid = 0;
  const t0 = performance.now();
  for (let i = 0; i < numbers.length; i++) {
    if (validate(numbers[i]).isValid) valid++;
  }
  return { ms: performance.now() - t0, valid };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// validateNumber beside card-validator's number(), on the same numbers. Passes alternate so
// both libraries see the same background noise; the fast one runs `repeats` times as often,
// since its passes are short and a short pass is easily disturbed.
async function validation({ count, seed, rounds, repeats, warmup }) {
  await cardseal.ready();
  const numbers = generateNumbers(count, seed);
  const subjects = {
    cardseal: (n) => cardseal.validateNumber(n),
    peer: (n) => cardValidatorNumber(n),
  };
  const runs = { cardseal: [], peer: [] };
  const valid = {};
  for (let i = 0; i < warmup; i++) {
    for (const [name, fn] of Object.entries(subjects)) valid[name] = pass(fn, numbers).valid;
  }
  for (let i = 0; i < rounds; i++) {
    for (const [name, fn] of Object.entries(subjects)) {
      for (let k = 0; k < (repeats[name] ?? 1); k++) runs[name].push(pass(fn, numbers).ms);
    }
    // Let the page breathe between rounds (GC, timers), as a real page would.
    await new Promise((r) => setTimeout(r, 0));
  }
  const perNumberUs = (ms) => (ms * 1000) / count;
  return {
    count,
    seed,
    warmup,
    sample: numbers.slice(0, 8),
    valid,
    passesMs: runs,
    cardsealUs: perNumberUs(median(runs.cardseal)),
    cardsealBestUs: perNumberUs(Math.min(...runs.cardseal)),
    peerUs: perNumberUs(median(runs.peer)),
    peerBestUs: perNumberUs(Math.min(...runs.peer)),
  };
}

window.bench = { validation };
window.benchReady = true;
