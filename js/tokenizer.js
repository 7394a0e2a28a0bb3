// The keyed part of the JS API: a thin wrapper over the wasm's vault client (src/wasm/client.rs),
// which reads the options, imports or fetches the vault key, seals, and posts to the vault with
// its deadline, retries and idempotency key. CardSeal (js/core.js) adds the form mode on top; the
// hosted-field documents (js/frame.js) use this class alone, so their script carries neither the
// form mode nor its offline messages.
import { CardSealError } from './error.js';
import {
  cardInput, localizedError, localizedErrors, newClient, ready, resolveLocale, sealing, text, toCardSealError, validateCard,
} from './validate.js';

const CREATE = Symbol('CardSeal.create');

/** Seals cards with the vault's key and tokenizes them (DESIGN.md, "JavaScript API"). */
export class Tokenizer {
  #client;
  #locale;

  /** Use `await CardSeal.create(options)`. */
  constructor(token, client, locale) {
    if (token !== CREATE) throw new CardSealError('invalid_usage', 'cardseal: use `await CardSeal.create(options)`');
    this.#client = client;
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
    return new this(CREATE, await newClient(options ?? {}), locale);
  }

  /** The language of this instance's messages, as a supported tag (`en`, `de`, …, `zh-Hans`). */
  get locale() {
    return this.#locale;
  }

  /** The `kid` of the vault key in use. */
  get kid() {
    return this.#client.kid ?? null;
  }

  /** Every field's error at once (as `validateCard`). */
  validate(card) {
    const result = validateCard(card);
    return this.#locale === 'en' ? result : { ...result, errors: localizedErrors(result.errors, this.#locale) };
  }

  /** Validates and seals a card: the compact JWE, for callers who post it themselves. */
  seal(card) {
    try {
      return sealing(() => this.#client.sealCard(cardInput(card)));
    } catch (e) {
      throw localizedError(e, this.#locale);
    }
  }

  // The wasm's promise, its rejection a CardSealError in this instance's language.
  async #call(promise) {
    try {
      return await promise;
    } catch (e) {
      throw localizedError(toCardSealError(e), this.#locale);
    }
  }

  /** Validates, seals and posts the card to the vault; resolves to a single-use Token. */
  async tokenize(card) {
    const input = cardInput(card);
    return this.#call(this.#client.tokenize(input));
  }

  /** Seals and posts a CVC alone, to re-add it to a saved card; resolves to a Token of type `cvc`. */
  async tokenizeCvc(cvc) {
    const value = text(cvc);
    return this.#call(this.#client.tokenizeCvc(value));
  }
}
