// The sealed card is a standard JWE: panva's `jose`, an independent implementation, opens it.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import test from 'node:test';

import * as jose from 'jose';
import { CardSeal } from 'cardseal';

const { publicKey, privateKey } = await jose.generateKeyPair('RSA-OAEP-256', { modulusLength: 2048, extractable: true });
const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'vault-key-1', use: 'enc', alg: 'RSA-OAEP-256' };
const year = new Date().getUTCFullYear() + 2;

async function open(jwe) {
  const { plaintext, protectedHeader } = await jose.compactDecrypt(jwe, privateKey);
  return { header: protectedHeader, payload: JSON.parse(new TextDecoder().decode(plaintext)) };
}

test('jose decrypts a card sealed by the package (JWK, JWKS and PEM keys)', async () => {
  const pem = await jose.exportSPKI(publicKey);
  for (const vaultKey of [jwk, { keys: [{ ...jwk, kid: 'old', use: 'sig' }, jwk] }, JSON.stringify(jwk), pem]) {
    const seal = await CardSeal.create({ vaultUrl: 'https://vault.invalid', publishableKey: 'pk_test_x', vaultKey });
    const jwe = seal.seal({ number: '4242 4242 4242 4242', exp_month: '12', exp_year: year, cvc: '123', name: 'Ada Lovelace' });
    const { header, payload } = await open(jwe);
    assert.equal(header.alg, 'RSA-OAEP-256');
    assert.equal(header.enc, 'A256GCM');
    assert.equal(header.kid, typeof vaultKey === 'string' && vaultKey.startsWith('-----') ? undefined : 'vault-key-1');
    assert.deepEqual(Object.keys(payload), ['v', 'number', 'exp_month', 'exp_year', 'cvc', 'name', 'iat', 'jti']);
    assert.equal(payload.v, 1);
    assert.equal(payload.number, '4242424242424242');
    assert.equal(payload.exp_month, 12);
    assert.equal(payload.exp_year, year);
    assert.equal(payload.cvc, '123');
    assert.equal(payload.name, 'Ada Lovelace');
    assert.ok(Math.abs(payload.iat - Date.now() / 1000) < 60);
    assert.match(payload.jti, /^[A-Za-z0-9_-]{22}$/);
  }
});

test('every seal is fresh: new CEK, IV and jti', async () => {
  const seal = await CardSeal.create({ vaultUrl: 'https://vault.invalid', publishableKey: 'pk_test_x', vaultKey: jwk });
  const card = { number: '378282246310005', exp_month: 1, exp_year: year, cvc: '1234' };
  const a = seal.seal(card);
  const b = seal.seal(card);
  const [pa, pb] = [a.split('.'), b.split('.')];
  assert.equal(pa.length, 5);
  for (const i of [1, 2, 3, 4]) assert.notEqual(pa[i], pb[i], `segment ${i + 1}`);
  assert.notEqual((await open(a)).payload.jti, (await open(b)).payload.jti);
  // Amex with its 4-digit CID, no name member when none was given.
  assert.deepEqual(Object.keys((await open(a)).payload), ['v', 'number', 'exp_month', 'exp_year', 'cvc', 'iat', 'jti']);
});

test('an invalid card throws a CardSealError with every field, and seals nothing', async () => {
  const seal = await CardSeal.create({ vaultUrl: 'https://vault.invalid', publishableKey: 'pk_test_x', vaultKey: jwk });
  assert.throws(() => seal.seal({ number: '4242 4242 4242 4241', exp_month: 13, exp_year: year, cvc: '12' }), (e) => {
    assert.equal(e.name, 'CardSealError');
    assert.equal(e.code, 'invalid_number');
    assert.equal(e.type, 'validation_error');
    assert.equal(e.param, 'number');
    assert.deepEqual(e.errors.map((x) => x.code), ['invalid_number', 'invalid_expiry_month', 'incomplete_cvc']);
    return true;
  });
});

test('key import errors are clear', async () => {
  const create = (vaultKey) => CardSeal.create({ vaultUrl: 'https://vault.invalid', publishableKey: 'pk_test_x', vaultKey });
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const ec = await jose.generateKeyPair('ECDH-ES', { extractable: true });
  const cases = [
    ['not a key', 'invalid_key'],
    ['{"kty":"RSA"', 'invalid_key'],
    [{ ...small.publicKey.export({ format: 'jwk' }), use: 'enc' }, 'key_too_small'],
    [await jose.exportJWK(ec.publicKey), 'unsupported_key'],
    [{ ...jwk, use: 'sig' }, 'key_not_for_encryption'],
    [{ keys: [{ ...jwk, use: 'sig' }] }, 'no_encryption_key'],
  ];
  for (const [key, code] of cases) {
    await assert.rejects(create(key), (e) => e.name === 'CardSealError' && e.code === code, code);
  }
  await assert.rejects(CardSeal.create({ vaultUrl: 'https://vault.invalid', publishableKey: 'sk_test_secret', vaultKey: jwk }),
    (e) => e.code === 'invalid_publishable_key' && e.param === 'publishableKey');
  assert.throws(() => new CardSeal(), (e) => e.code === 'invalid_usage');
});

// CardSeal is the keyed Tokenizer (js/tokenizer.js) plus the form mode; the hosted-field
// documents use Tokenizer alone, so their script is built without the form mode.
test('CardSeal.create makes a CardSeal with the form mode; the field documents carry none of it', async () => {
  const cardseal = await CardSeal.create({ vaultUrl: 'https://vault.example', publishableKey: 'pk_test_abc', vaultKey: jwk });
  assert.ok(cardseal instanceof CardSeal);
  assert.equal(typeof cardseal.attach, 'function');
  assert.equal(cardseal.kid, 'vault-key-1');
  const { readFileSync } = await import('node:fs');
  const root = new URL('../../', import.meta.url);
  const attachSource = readFileSync(new URL('js/attach.js', root), 'utf8');
  const marker = 'so the browser can never submit card data';
  assert.ok(attachSource.includes(marker), 'the marker string is still in js/attach.js');
  assert.ok(readFileSync(new URL('pkg/snippet/cardseal.js', root), 'utf8').includes(marker));
  assert.ok(!readFileSync(new URL('pkg/snippet/cardseal-frame.js', root), 'utf8').includes(marker));
});
