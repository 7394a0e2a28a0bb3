// Type-checked by `tsc --noEmit -p tests/ts` in `npm test`: every export, used as documented.
import {
  CardSealError, ready, validateCard, validateCvc, validateExpiry, validateNumber,
  formatCardNumber, formatExpiry, messageFor, resolveLocale,
  type Brand, type Locale, type CardInput, type CardValidation, type ErrorCode, type FieldError,
  type Formatted, type NumberVerdict, type Verdict,
} from 'cardseal';

export async function demo(): Promise<string> {
  await ready();
  const n: NumberVerdict = validateNumber('4242 4242 4242 4242');
  const brand: Brand | null = n.brand;
  const candidates: Brand[] = n.candidates;
  const e: Verdict = validateExpiry(12, '2030');
  const combined: Verdict = validateExpiry('12 / 30');
  const c: Verdict = validateCvc('123', brand);
  // Any value: a number, or whatever a form handed over.
  const c2: Verdict = validateCvc(123);
  const c3: Verdict = validateCvc(null, null);
  const card: CardInput = { number: '4242424242424242', exp_month: 12, exp_year: 2030, cvc: '123', name: 'Ada' };
  const v: CardValidation = validateCard(card);
  const typed: CardInput = { number: '4242424242424242', expiry: '12 / 30', cvc: '123' };
  validateCard(typed);
  const errors: FieldError[] = v.errors;
  const codes: ErrorCode[] = errors.map((x) => x.code);
  const f: Formatted = formatCardNumber('4242424242', 4);
  const g: Formatted = formatExpiry('1230');
  const m: string | undefined = messageFor('invalid_number');
  const de: string | undefined = messageFor('invalid_number', 'de');
  const locale: Locale = resolveLocale('auto');
  try {
    validateNumber('x');
  } catch (err) {
    if (err instanceof CardSealError) {
      const s: string = err.code + err.type + String(err.param) + String(err.status ?? '');
      return s;
    }
  }
  return [n.isValid, candidates.length, e.code, combined.isPotentiallyValid, c.isValid, codes.join(), f.value, f.caret, g.value, m, de, locale].join();
}

// @ts-expect-error: brands are a closed union.
const notABrand: Brand = 'visa-electron';
void notABrand;

import { fields as hostedFields, type FieldChange } from 'cardseal/fields';
import { fields, type Token } from 'cardseal';

export async function hosted(): Promise<Token> {
  const f = fields({ vaultUrl: 'https://vault.example', publishableKey: 'pk_test_x', locale: 'auto',
    style: { base: { color: '#1a1a1a', fontSize: '16px', '::placeholder': { color: '#888' } }, invalid: { color: '#b00020' } } });
  const number = f.create('number', { placeholder: '1234 1234 1234 1234' }).mount('#card-number');
  number.on('change', (e: FieldChange) => { if (e.error) console.log(e.error.code, e.error.message, e.brand, e.complete, e.empty); });
  number.on('ready', ({ kind }) => console.log(kind)).focus().clear().update({ style: { base: { color: 'red' } } });
  f.create('expiry').mount('#card-expiry');
  const cvcOnly = hostedFields({ vaultUrl: 'https://vault.example', publishableKey: 'pk_test_x' });
  cvcOnly.create('cvc').mount(document.body);
  await cvcOnly.tokenizeCvc();
  return f.tokenize({ name: 'Ada Lovelace' });
}
