// The demo shop's Refund button on the receipt, over plain HTTP (the receipt page runs no
// script): pay with a token, refund from the receipt, and the same receipt shows the refund
// and no second button; the vault holds one refund of the whole charge.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { startShop } from '../../www/shop.mjs';
import { sealedToken } from '../support/sealed-token.mjs';
import { startVault } from '../support/servers.mjs';

let vault;
let shop;

before(async () => {
  vault = await startVault();
  shop = await startShop({ vaultUrl: vault.url, publishableKey: vault.pk, secretKey: vault.sk });
});

after(async () => {
  await shop?.close();
  await vault?.stop();
});

async function postForm(path, fields) {
  const r = await fetch(shop.url + path, {
    method: 'POST', redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
  assert.equal(r.status, 303, await r.text());
  return r.headers.get('location');
}

describe("the demo shop's receipt", () => {
  it('refunds the charge from the receipt, once', async () => {
    const receipt = await postForm('/pay', { product: 'notebook', cardseal_token: await sealedToken(vault) });
    const html = await (await fetch(shop.url + receipt)).text();
    assert.match(html, /Payment successful/);
    const id = /name="receipt" value="([^"]+)"/.exec(html)?.[1];
    assert.ok(id && html.includes('data-refund'), 'the receipt has a Refund button');
    assert.match(html, /Refund €24\.00|Refund 24\.00/);

    assert.equal(await postForm('/refund', { receipt: id }), receipt, 'back to the same receipt');
    const after = await (await fetch(shop.url + receipt)).text();
    assert.match(after, /data-receipt-refunded>[^<]*24\.00[^<]*\(in full\)/);
    assert.ok(!after.includes('data-refund>'), 'no second Refund button');

    const charge = /<code>(ch_[A-Za-z0-9]+)<\/code>/.exec(after)[1];
    const list = await (await fetch(`${vault.url}/v1/refunds?charge=${charge}`, { headers: { authorization: `Bearer ${vault.sk}` } })).json();
    assert.deepEqual(list.data.map((r) => [r.amount, r.reason]), [[2400, 'requested_by_customer']]);
    // A second post (a reload of the form, say) refunds nothing more and says why.
    await postForm('/refund', { receipt: id });
    const again = await (await fetch(shop.url + receipt)).text();
    assert.match(again, /data-refund-error/);
    const still = await (await fetch(`${vault.url}/v1/refunds?charge=${charge}`, { headers: { authorization: `Bearer ${vault.sk}` } })).json();
    assert.equal(still.data.length, 1);
  });

  it('has no Refund button for a declined payment', async () => {
    const receipt = await postForm('/pay', { product: 'notebook', cardseal_token: await sealedToken(vault, '4000000000000002') });
    const html = await (await fetch(shop.url + receipt)).text();
    assert.match(html, /Payment declined/);
    assert.ok(!html.includes('data-refund'));
  });
});
