// Seals a payload with the npm package `jose`, an implementation independent of cardseal's.
// Usage: node jose_encrypt.mjs '<JWKS json>' '<payload json>'  -> prints the compact JWE.
import { CompactEncrypt, importJWK } from 'jose';

const [jwksText, payload] = process.argv.slice(2);
const jwk = JSON.parse(jwksText).keys.find((k) => k.use === 'enc');
const key = await importJWK(jwk, 'RSA-OAEP-256');
const jwe = await new CompactEncrypt(new TextEncoder().encode(payload))
  .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: jwk.kid })
  .encrypt(key);
process.stdout.write(jwe);
