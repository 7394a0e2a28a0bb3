// Messages in every supported language, chosen by tag, by `'auto'` and by `CardSeal.create`.
import assert from 'node:assert/strict';
import test from 'node:test';

import { CardSeal, CardSealError, messageFor, ready, resolveLocale } from 'cardseal';

import { startVault } from '../support/servers.mjs';

const LOCALES = ['en', 'de', 'fr', 'es', 'it', 'nl', 'pt-BR', 'pl', 'sv', 'ja', 'zh-Hans'];
const CODES = ['incomplete_number', 'invalid_number', 'incomplete_expiry', 'invalid_expiry_month',
  'invalid_expiry_year', 'invalid_expiry_year_past', 'incomplete_cvc', 'invalid_cvc', 'invalid_name'];

test('every code has a message in every locale, and no two codes share one', async () => {
  await ready();
  for (const locale of LOCALES) {
    const seen = new Set();
    for (const code of CODES) {
      const m = messageFor(code, locale);
      assert.ok(m && m.length > 3, `${locale} ${code}`);
      assert.ok(!seen.has(m), `${locale} repeats ${m}`);
      seen.add(m);
      if (locale !== 'en') assert.notEqual(m, messageFor(code), `${locale} ${code} is English`);
    }
  }
  assert.equal(messageFor('invalid_cvc', 'de'), 'Die Kartenprüfnummer ist ungültig.');
  assert.equal(messageFor('invalid_number', 'ja'), 'カード番号が正しくありません。');
  assert.equal(messageFor('no_such_code', 'de'), undefined);
});

test('tags resolve as documented; anything else is English with one warning', async (t) => {
  await ready();
  assert.equal(resolveLocale('pt'), 'pt-BR');
  assert.equal(resolveLocale('zh'), 'zh-Hans');
  assert.equal(resolveLocale('zh-CN'), 'zh-Hans');
  assert.equal(resolveLocale('de-CH'), 'de');
  assert.equal(resolveLocale(undefined), 'en');
  const warn = t.mock.method(console, 'warn', () => {});
  assert.equal(resolveLocale('zh-TW'), 'en');
  assert.equal(resolveLocale('klingon'), 'en');
  assert.equal(resolveLocale('klingon'), 'en');
  assert.equal(messageFor('invalid_number', '<script>'), messageFor('invalid_number'));
  assert.equal(resolveLocale(42), 'en');
  assert.equal(warn.mock.callCount(), 4, 'one warning per unknown value, never a throw');
});

test("'auto' takes the first supported entry of navigator.languages", async (t) => {
  await ready();
  const had = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
  const set = (languages) => Object.defineProperty(globalThis, 'navigator', { value: { languages }, configurable: true });
  t.after(() => {
    if (had) Object.defineProperty(globalThis, 'navigator', had);
    else delete globalThis.navigator;
  });
  set(['tlh', 'zh-TW', 'pt-PT', 'de']);
  assert.equal(resolveLocale('auto'), 'pt-BR');
  set(['tlh']);
  assert.equal(resolveLocale('auto'), 'en');
  set(['sv-SE', 'en']);
  assert.equal(messageFor('incomplete_number', 'auto'), 'Kortnumret är ofullständigt.');
});

test('CardSeal.create({ locale }) localizes validation and tokenize errors', async (t) => {
  const vault = await startVault();
  t.after(() => vault.stop());
  const fr = await CardSeal.create({ vaultUrl: vault.url, publishableKey: vault.pk, locale: 'fr' });
  assert.equal(fr.locale, 'fr');
  const v = fr.validate({ number: '4242424242424241', exp_month: 12, exp_year: 2030, cvc: '1' });
  assert.equal(v.valid, false);
  assert.deepEqual(v.errors.map((e) => e.message),
    ['Le numéro de carte est invalide.', 'Le code de sécurité est incomplet.']);
  await assert.rejects(fr.tokenize({ number: '4242424242424241', exp_month: 12, exp_year: 2030, cvc: '123' }), (e) => {
    assert.ok(e instanceof CardSealError);
    assert.equal(e.code, 'invalid_number');
    assert.equal(e.message, 'Le numéro de carte est invalide.');
    return true;
  });
  const token = await fr.tokenize({ number: '4242424242424242', exp_month: 12, exp_year: 2030, cvc: '123' });
  assert.match(token.id, /^tok_/);
  const en = await CardSeal.create({ vaultUrl: vault.url, publishableKey: vault.pk });
  assert.equal(en.locale, 'en');
  assert.equal(en.validate({ number: '4242424242424241', exp_month: 12, exp_year: 2030 }).errors[0].message,
    'Your card number is invalid.');
});
