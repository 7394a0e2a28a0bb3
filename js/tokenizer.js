// The keyed part of the JS API: seals cards with the vault's key and tokenizes them. CardSeal
// (js/core.js) adds the form mode on top; the hosted-field documents (js/frame.js) use this
// class alone, so their script carries neither the form mode nor its offline messages.
import { fetchKeys, postToken, readOptions } from './client.js';
import { CardSealError } from './error.js';
import {
  cardArgs, localizedError, localizedErrors, newSealer, ready, resolveLocale, sealing, text, toCardSealError, validateCard,
} from './validate.js';

const CREATE = Symbol('CardSeal.create');

/** Seals cards with the vault's key and tokenizes them (DESIGN.md, "JavaScript API"). */
export class Tokenizer {
  #client;
  #sealer;
  #locale;

  /** Use `await CardSeal.create(options)`. */
  constructor(token, client, sealer, locale) {
    if (token !== CREATE) throw new CardSealError('invalid_usage', 'cardseal: use `await CardSeal.create(options)`');
    this.#client = client;
    this.#sealer = sealer;
    this.#locale = locale ?? 'en';
  }

  /**
   * `{ vaultUrl, publishableKey, vaultKey?, timeoutMs?, retries?, locale? }`. Without
   * `vaultKey`, the keys are fetched from `GET {vaultUrl}/v1/encryption_keys`. `locale` picks
   * the language of validation messages (a tag or `'auto'`; English by default).
   */
  static async create(options) {
    await ready();
    const locale = resolveLocale(options ? options.locale : undefined);
    const client = readOptions(options ?? {});
    const key = client.vaultKey ?? await fetchKeys(client);
    return new this(CREATE, client, newSealer(key), locale);
  }

  /** The language of this instance's messages, as a supported tag (`en`, `de`, …, `zh-Hans`). */
  get locale() {
    return this.#locale;
  }

  /** The `kid` of the vault key in use. */
  get kid() {
    return this.#sealer.kid ?? null;
  }

  /** Every field's error at once (as `validateCard`). */
  validate(card) {
    const result = validateCard(card);
    return this.#locale === 'en' ? result : { ...result, errors: localizedErrors(result.errors, this.#locale) };
  }

  /** Validates and seals a card: the compact JWE, for callers who post it themselves. */
  seal(card) {
    try {
      return sealing(() => this.#sealer.sealCard(...cardArgs(card)));
    } catch (e) {
      throw localizedError(e, this.#locale);
    }
  }

  // Seals with `seal(sealer)` and posts it as `member` (an invalid card rejects before any
  // request); a rotated vault key replaces the sealer.
  async #post(member, seal) {
    try {
      return await postToken(this.#client, this.#sealer, member, (sealer) => sealing(() => seal(sealer)),
        (keys) => (this.#sealer = newSealer(keys)));
    } catch (e) {
      throw localizedError(toCardSealError(e), this.#locale);
    }
  }

  /** Validates, seals and posts the card to the vault; resolves to a single-use Token. */
  async tokenize(card) {
    const args = cardArgs(card);
    return this.#post('card', (sealer) => sealer.sealCard(...args));
  }

  /** Seals and posts a CVC alone, to re-add it to a saved card; resolves to a Token of type `cvc`. */
  async tokenizeCvc(cvc) {
    const value = text(cvc);
    return this.#post('cvc', (sealer) => sealer.sealCvc(value));
  }
}
