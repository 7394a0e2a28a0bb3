// The JS API in Node, through the package's own entry (`import … from 'cardseal'`).
import assert from 'node:assert/strict';
import test from 'node:test';

import {
  CardSealError, formatCardNumber, formatExpiry, messageFor, ready, validateCard, validateCvc,
  validateExpiry, validateNumber,
} from 'cardseal';

const BRANDS = ['visa', 'mastercard', 'amex', 'diners', 'discover', 'jcb', 'unionpay', 'maestro',
  'mir', 'elo', 'hiper', 'hipercard', 'verve', 'troy', 'uzcard', 'humo'];
const CODES = ['incomplete_number', 'invalid_number', 'incomplete_expiry', 'invalid_expiry_month',
  'invalid_expiry_year', 'invalid_expiry_year_past', 'incomplete_cvc', 'invalid_cvc', 'invalid_name'];

test('ready() is idempotent', async () => {
  const a = ready();
  const b = ready();
  assert.equal(a, b);
  await a;
});

test('validateNumber', () => {
  assert.deepEqual(validateNumber('4242 4242 4242 4242'),
    { brand: 'visa', candidates: ['visa'], isValid: true, isPotentiallyValid: true, code: null });
  assert.deepEqual(validateNumber('2'),
    { brand: null, candidates: ['mastercard', 'jcb', 'mir'], isValid: false, isPotentiallyValid: true, code: 'incomplete_number' });
  assert.equal(validateNumber('378282246310005').brand, 'amex');
  assert.equal(validateNumber('4242424242424241').code, 'invalid_number');
  // A number where typed: a safe integer is read as its digits.
  assert.equal(validateNumber(4242424242424242).isValid, true);
  assert.equal(validateNumber(1.5).code, 'invalid_number');
  assert.equal(validateNumber(-4242).code, 'invalid_number');
});

test('validateExpiry and validateCvc', () => {
  const y = new Date().getUTCFullYear();
  assert.deepEqual(validateExpiry(12, y + 2), { isValid: true, isPotentiallyValid: true, code: null });
  assert.deepEqual(validateExpiry('12', String((y + 2) % 100).padStart(2, '0')), { isValid: true, isPotentiallyValid: true, code: null });
  assert.equal(validateExpiry(`12 / ${String((y + 2) % 100).padStart(2, '0')}`).isValid, true);
  assert.equal(validateExpiry(0, y + 2).code, 'invalid_expiry_month');
  assert.equal(validateExpiry('0', y + 2).code, 'incomplete_expiry');
  assert.equal(validateExpiry(13, y + 2).code, 'invalid_expiry_month');
  assert.equal(validateExpiry(1, y - 1).code, 'invalid_expiry_year_past');
  assert.equal(validateExpiry(1, y + 21).code, 'invalid_expiry_year');
  assert.equal(validateCvc('1234', 'amex').isValid, true);
  assert.equal(validateCvc('123', 'amex').code, 'incomplete_cvc');
  assert.equal(validateCvc('1234', 'visa').code, 'invalid_cvc');
  assert.equal(validateCvc('1234').isValid, true);
  assert.equal(validateCvc('1234', null).isValid, true);
});

test('validateCard reports every field with English messages', () => {
  const y = new Date().getUTCFullYear();
  assert.deepEqual(validateCard({ number: '4242424242424242', exp_month: 12, exp_year: y + 1, cvc: '123', name: 'Ada' }),
    { valid: true, brand: 'visa', errors: [] });
  const bad = validateCard({ number: '4242', exp_month: '13', exp_year: y + 1, cvc: '12345', name: 'x\u0007' });
  assert.equal(bad.valid, false);
  assert.deepEqual(bad.errors.map((e) => [e.field, e.code]), [
    ['number', 'incomplete_number'], ['expiry', 'invalid_expiry_month'], ['cvc', 'invalid_cvc'], ['name', 'invalid_name']]);
  assert.equal(bad.errors[0].message, 'Your card number is incomplete.');
  assert.equal(messageFor('invalid_cvc'), "Your card's security code is invalid.");
});

test('validateCard takes the expiry field as typed, unsplit', () => {
  const yy = String((new Date().getUTCFullYear() + 1) % 100).padStart(2, '0');
  assert.deepEqual(validateCard({ number: '4242424242424242', expiry: `12 / ${yy}`, cvc: '123' }),
    { valid: true, brand: 'visa', errors: [] });
  assert.deepEqual(validateCard({ number: '4242424242424242', expiry: '13 / 30', cvc: '123' }).errors.map((e) => e.code),
    ['invalid_expiry_month']);
  // `expiry` wins over exp_month and exp_year.
  assert.equal(validateCard({ number: '4242424242424242', expiry: `12 / ${yy}`, exp_month: 13, exp_year: 1 }).valid, true);
});

test('formatting', () => {
  assert.deepEqual(formatCardNumber('4242424242424242'), { value: '4242 4242 4242 4242', caret: 19 });
  assert.deepEqual(formatCardNumber('378282246310005'), { value: '3782 822463 10005', caret: 17 });
  assert.deepEqual(formatCardNumber('42424', 5), { value: '4242 4', caret: 6 });
  assert.deepEqual(formatExpiry('1230'), { value: '12 / 30', caret: 7 });
  assert.deepEqual(formatExpiry('4'), { value: '04', caret: 2 });
});

// Deterministic PRNG so a failure is reproducible from the seed printed in the assertion.
function rng(seed) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32);
}

const HOSTILE = [
  '', ' ', '\u0000', '\u0000'.repeat(50), '\u0007\u001b[31m', '\ud800', '\udc00', 'a\ud83dz', '\ud83d\ude00'.repeat(20),
  '٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢', '４２４２', '4'.repeat(10_000), 'x'.repeat(10_000), '\u202e4242', '<script>alert(1)</script>',
  '-1', 'NaN', 'Infinity', '1e21', '0x10', '   12 / 30   ', '12//30', '/', '////', '\n\r\t',
];
const ODD_VALUES = [undefined, null, NaN, Infinity, -Infinity, -1, 1.5, 2 ** 60, {}, [], [4242], true, () => 1, Symbol('s'), 10n];

function randomString(r) {
  const len = Math.floor(r() * 40);
  let s = '';
  for (let i = 0; i < len; i++) {
    const pick = r();
    if (pick < 0.5) s += String.fromCharCode(48 + Math.floor(r() * 10));
    else if (pick < 0.6) s += ' ';
    else if (pick < 0.7) s += '/';
    else if (pick < 0.9) s += String.fromCharCode(Math.floor(r() * 0x10000));
    else s += String.fromCodePoint(0x1f600 + Math.floor(r() * 80));
  }
  return s;
}

function checkVerdict(v, ctx) {
  assert.equal(typeof v.isValid, 'boolean', ctx);
  assert.equal(typeof v.isPotentiallyValid, 'boolean', ctx);
  assert.ok(v.code === null || CODES.includes(v.code), ctx);
  assert.equal(v.isValid, v.code === null, ctx);
  if (v.isValid) assert.ok(v.isPotentiallyValid, ctx);
}

test('every export answers hostile and random input with a verdict, never a throw', () => {
  const r = rng(0xc0ffee);
  const inputs = [...HOSTILE, ...ODD_VALUES];
  for (let i = 0; i < 3000; i++) inputs.push(randomString(r));
  for (const x of inputs) {
    const ctx = `input ${typeof x === 'string' ? JSON.stringify(x.slice(0, 40)) : String(typeof x)}`;
    const n = validateNumber(x);
    checkVerdict(n, ctx);
    assert.ok(n.brand === null || BRANDS.includes(n.brand), ctx);
    assert.ok(n.candidates.every((b) => BRANDS.includes(b)), ctx);
    checkVerdict(validateExpiry(x, x), ctx);
    checkVerdict(validateExpiry(x), ctx);
    checkVerdict(validateCvc(x, x), ctx);
    checkVerdict(validateCvc(x, 'amex'), ctx);
    const c = validateCard({ number: x, exp_month: x, exp_year: x, cvc: x, name: x });
    assert.equal(c.valid, c.errors.length === 0, ctx);
    for (const e of c.errors) assert.ok(CODES.includes(e.code) && typeof e.message === 'string', ctx);
    assert.equal(validateCard(x).valid, false, ctx);
    for (const f of [formatCardNumber(x, 3), formatCardNumber(x), formatExpiry(x, 2), formatExpiry(x, x)]) {
      assert.match(f.value, /^[0-9 /]*$/, ctx);
      assert.ok(f.value.length <= 23 && Number.isInteger(f.caret) && f.caret >= 0 && f.caret <= f.value.length, ctx);
    }
  }
});

test('the UTF-16 buffer path and the string path agree', () => {
  // Up to 64 code units go through the shared buffer; trailing spaces are ignored by the rules,
  // so padding a string past 64 sends the same number through the &str path.
  const r = rng(7);
  const inputs = [...HOSTILE.filter((x) => x.length <= 64), '4242 4242 4242 4242', '\ud83d4242', '4242\ud800'];
  for (let i = 0; i < 3000; i++) inputs.push(randomString(r));
  for (let i = 0; i < 3000; i++) inputs.push(String(Math.floor(r() * 1e16)).padStart(16, '4'));
  for (const x of inputs.filter((s) => s.length <= 64)) {
    assert.deepEqual(validateNumber(x), validateNumber(x + ' '.repeat(65)), JSON.stringify(x));
  }
});

test('CardSealError carries code, type and param', () => {
  const e = new CardSealError('invalid_number', 'bad', { type: 'validation_error', param: 'number', status: 402 });
  assert.ok(e instanceof Error);
  assert.deepEqual([e.name, e.code, e.type, e.param, e.status], ['CardSealError', 'invalid_number', 'validation_error', 'number', 402]);
});

test('an error of either browser entry is a CardSealError of both, and nothing else is', async () => {
  // pkg/index.js and pkg/fields.js are one file each, each with its own copy of the class.
  const entries = [await import('../../pkg/index.js').catch(() => null), await import('../../pkg/fields.js')];
  const classes = [CardSealError, ...entries.filter(Boolean).map((m) => m.CardSealError)];
  assert.ok(classes.length >= 2);
  for (const A of classes) {
    for (const B of classes) assert.ok(new A('x', 'm') instanceof B);
    for (const other of [new Error('x'), new TypeError('x'), { name: 'CardSealError', code: 'x' }, null, 'x']) {
      assert.equal(other instanceof A, false);
    }
  }
});
