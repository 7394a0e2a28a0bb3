// A card token made as a browser makes one, without a browser: the card sealed to the vault's
// current key with `jose` (an implementation independent of cardseal's), posted to
// `/v1/tokens` with the publishable key from an allowed origin.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import { CompactEncrypt, importJWK } from 'jose';

/** A `tok_…` of `number` (expiry 12/2030, CVC 123) on `vault` (from startVault). */
export async function sealedToken(vault, number = '4242424242424242') {
  const jwks = await (await fetch(`${vault.url}/.well-known/jwks.json`)).json();
  const jwk = jwks.keys.at(-1);
  const payload = {
    v: 1, number, exp_month: 12, exp_year: 2030, cvc: '123',
    iat: Math.floor(Date.now() / 1000), jti: randomBytes(16).toString('base64url'),
  };
  const jwe = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: jwk.kid })
    .encrypt(await importJWK(jwk, 'RSA-OAEP-256'));
  const r = await fetch(`${vault.url}/v1/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${vault.pk}`, 'content-type': 'application/json', origin: 'http://127.0.0.1:1' },
    body: JSON.stringify({ card: jwe }),
  });
  assert.equal(r.status, 200, await r.clone().text());
  return (await r.json()).id;
}
