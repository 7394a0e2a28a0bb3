/** A card brand, by its stable wire name. */
export type Brand =
  | 'visa' | 'mastercard' | 'amex' | 'diners' | 'discover' | 'jcb' | 'unionpay' | 'maestro'
  | 'mir' | 'elo' | 'hiper' | 'hipercard' | 'verve' | 'troy' | 'uzcard' | 'humo';

/** A validation error code, as Stripe.js names them. */
export type ErrorCode =
  | 'incomplete_number' | 'invalid_number'
  | 'incomplete_expiry' | 'invalid_expiry_month' | 'invalid_expiry_year' | 'invalid_expiry_year_past'
  | 'incomplete_cvc' | 'invalid_cvc' | 'invalid_name';

/** The field an error belongs to. */
export type Field = 'number' | 'expiry' | 'cvc' | 'name';

/** An as-you-type verdict on one field. */
export interface Verdict {
  /** The field is complete and valid. */
  isValid: boolean;
  /** More typing could still make it valid. */
  isPotentiallyValid: boolean;
  /** Why it is not valid; `null` when it is. */
  code: ErrorCode | null;
}

/** The verdict on a card number. */
export interface NumberVerdict extends Verdict {
  /** The brand, once the digits name one. */
  brand: Brand | null;
  /** Every brand the digits typed so far could still be. */
  candidates: Brand[];
}

/**
 * What the customer typed. The expiry is either `expiry`, the whole field as typed
 * (`'MM / YY'`, `'MM/YYYY'`), or `exp_month` and `exp_year`; `expiry` wins when both are given.
 */
export interface CardInput {
  number: string;
  /** The whole expiry as typed, `'MM / YY'`: no need to split it. */
  expiry?: string;
  exp_month?: number | string;
  exp_year?: number | string;
  cvc?: string;
  name?: string;
}

/** One field's error. */
export interface FieldError {
  field: Field;
  code: ErrorCode;
  /** English message. */
  message: string;
}

/** The verdict on a whole card. */
export interface CardValidation {
  valid: boolean;
  brand: Brand | null;
  errors: FieldError[];
}

/** A formatted field value and where the caret goes (UTF-16 offsets). */
export interface Formatted {
  value: string;
  caret: number;
}

/** What `ready()` can load the wasm from. */
export type WasmSource = string | URL | Request | Response | Promise<Response> | BufferSource | WebAssembly.Module;

/** Every failure of the package. */
export class CardSealError extends Error {
  /** Stable machine-readable code, e.g. `invalid_number` or `not_ready`. */
  code: string;
  /** The error family: `validation_error`, `invalid_request_error`, `api_error` … */
  type: string;
  /** The field or parameter concerned, if any. */
  param: string | null;
  /** The HTTP status, for errors the vault answered. */
  status?: number;
  /** For an invalid card: every field's error. */
  errors?: FieldError[];
}

/**
 * Loads the wasm once; idempotent. Every other export throws `not_ready` before it resolves.
 * A wasm that cannot be fetched rejects with `network_error` (one that does not compile with
 * `wasm_load_failed`), and `ready()` may then be called again.
 */
export function ready(source?: WasmSource): Promise<void>;
/** The as-you-type verdict on a card number. Never throws on junk. */
export function validateNumber(number: string | number): NumberVerdict;
/** The verdict on an expiry; with `year` omitted, `month` may be a whole `MM / YY` field. */
export function validateExpiry(month: string | number, year?: string | number): Verdict;
/**
 * The verdict on a CVC, sized for `brand` when known (3 digits, 4 for amex; 3 or 4 without one).
 * Accepts any value, as every validator does: a number is read as its digits, and junk
 * (`null`, objects, emoji) gets a verdict, never an exception.
 */
export function validateCvc(cvc: unknown, brand?: Brand | null): Verdict;
/** Every field's error at once. */
export function validateCard(card: CardInput): CardValidation;
/** Formats a card number as typed, keeping the caret after the same digit. */
export function formatCardNumber(input: string, caret?: number): Formatted;
/** Formats an expiry as `MM / YY`, keeping the caret after the same digit. */
export function formatExpiry(input: string, caret?: number): Formatted;
/** Formats a CVC: digits only, at most 4 (the longest CVC of any brand). */
export function formatCvc(input: string, caret?: number): Formatted;
/** A supported language of the messages. */
export type Locale = 'en' | 'de' | 'fr' | 'es' | 'it' | 'nl' | 'pt-BR' | 'pl' | 'sv' | 'ja' | 'zh-Hans';
/**
 * The supported locale for a BCP 47 tag (`pt` gives `pt-BR`, `zh`/`zh-CN` give `zh-Hans`), for
 * `'auto'` (the first supported entry of `navigator.languages`), or English. An unsupported tag
 * gives English and one console warning, never a throw.
 */
export function resolveLocale(locale?: string | null): Locale;
/** The message for an error code in `locale` (English by default; see `resolveLocale`). */
export function messageFor(code: string, locale?: string): string | undefined;

/** A JWK, a JWKS, or an SPKI PEM string. */
export type VaultKey = JsonWebKey | { keys: JsonWebKey[] } | string;

/** Options of `CardSeal.create`. */
export interface CardSealOptions {
  /** The vault's base URL, e.g. `https://vault.example`. */
  vaultUrl: string;
  /** The account's publishable key (`pk_…`). */
  publishableKey: string;
  /** The vault's key; fetched from `GET {vaultUrl}/v1/encryption_keys` when omitted. */
  vaultKey?: VaultKey;
  /** Overall deadline of one `tokenize` call, in milliseconds (default 15000). */
  timeoutMs?: number;
  /**
   * How many times one `tokenize` call is retried (an integer 0 to 10, default 3): after a network
   * error, a 429, a 5xx, or a 409 `idempotency_key_in_use` (an earlier attempt with the same key
   * is still running at the vault). Each retry waits with exponential backoff and jitter (at
   * least `Retry-After`) and reuses the idempotency key, so one call makes at most one token.
   * `timeoutMs` still bounds the whole call.
   */
  retries?: number;
  /** The language of validation messages: a tag such as `'de'` or `'pt-BR'`, or `'auto'` (default English). */
  locale?: string;
}

/** The card part of a Token. */
export interface TokenCard {
  brand: Brand;
  last4: string;
  exp_month: number;
  exp_year: number;
  funding: string | null;
  country: string | null;
}

/** A single-use token from the vault. */
export interface Token {
  id: string;
  object: 'token';
  type: 'card' | 'cvc';
  card: TokenCard | null;
  client_ip: string | null;
  created: number;
  expires_at: number;
  livemode: boolean;
  used: boolean;
}

/** Seals cards with the vault's key and tokenizes them. */
export class CardSeal {
  private constructor();
  /**
   * Loads the wasm itself (it awaits `ready()`, so no separate call is needed), checks the
   * options and imports (or fetches) the vault key.
   */
  static create(options: CardSealOptions): Promise<CardSeal>;
  /** The `kid` of the vault key in use. */
  readonly kid: string | null;
  /** The language of this instance's messages. */
  readonly locale: Locale;
  /** Every field's error at once. */
  validate(card: CardInput): CardValidation;
  /** Validates and seals a card: the compact JWE. Throws a `CardSealError` for an invalid card. */
  seal(card: CardInput): string;
  /**
   * Validates, seals and posts the card; an invalid card rejects before any network call.
   * Network errors, 429, 5xx and 409 `idempotency_key_in_use` are retried (`retries`, default 3)
   * with the same idempotency key.
   */
  tokenize(card: CardInput): Promise<Token>;
  /** Seals and posts a CVC alone, to re-add it to a saved card. */
  tokenizeCvc(cvc: string): Promise<Token>;
  /** The snippet's form mode, on a `<form>` or a selector for one. */
  attach(form: HTMLFormElement | string, options?: AttachOptions): Attachment;
}

/** Options of `CardSeal.attach`. */
export interface AttachOptions {
  /** Submit the form once the token is in it (default `true`). */
  submit?: boolean;
  /** The language of the form's messages (default: the instance's). */
  locale?: string;
}

/** A form that a CardSeal is attached to. */
export interface Attachment {
  form: HTMLFormElement;
  /** Validates every field now and shows the errors. */
  validate(): CardValidation;
  /** Removes every listener. */
  detach(): void;
}

/** A hosted field's kind: one input per iframe, or `card` (all four in one iframe). */
export type FieldKind = 'number' | 'expiry' | 'cvc' | 'name' | 'card';

/** The CSS properties a hosted field's text may take (the allow-list; anything else is dropped with a warning). */
export interface FieldStyleRules {
  color?: string;
  fontFamily?: string;
  fontSize?: string;
  fontSmoothing?: string;
  fontStyle?: string;
  fontVariant?: string;
  fontWeight?: string | number;
  letterSpacing?: string;
  lineHeight?: string | number;
  padding?: string;
  textAlign?: string;
  textDecoration?: string;
  textShadow?: string;
  textTransform?: string;
}

/** The rules of one state, with the allowed pseudo-classes. No `url()`, `@import` or `expression()`. */
export interface FieldStyleState extends FieldStyleRules {
  '::placeholder'?: FieldStyleRules;
  ':focus'?: FieldStyleRules;
  ':hover'?: FieldStyleRules;
}

/** The style of hosted fields, by state. */
export interface FieldStyle {
  base?: FieldStyleState;
  complete?: FieldStyleState;
  empty?: FieldStyleState;
  invalid?: FieldStyleState;
}

/** Options of `fields()`. */
export interface FieldsOptions {
  /** The vault's base URL; the iframes are its documents. */
  vaultUrl: string;
  /** The account's publishable key (`pk_…`); the page's origin must be one of its allowed origins. */
  publishableKey: string;
  /** The language of labels and messages: a tag or `'auto'` (default English). */
  locale?: string;
  style?: FieldStyle;
  /** Deadline of loading a field and of one tokenize call, in milliseconds (default 15000). */
  timeoutMs?: number;
  /** Retries of one tokenize call (as `CardSealOptions.retries`). */
  retries?: number;
}

/** What a hosted field tells the page on `change`: never a value, a length or digits. */
export interface FieldChange {
  kind: FieldKind;
  complete: boolean;
  empty: boolean;
  /** The brand (number and card fields). */
  brand: Brand | null;
  /** The error shown in the field, with its message in the field's language. */
  error: { code: ErrorCode; message: string } | null;
}

/** A hosted field. */
export interface HostedField {
  readonly kind: FieldKind;
  /** Inserts the iframe into an element (or the element a selector names). */
  mount(target: Element | string): HostedField;
  unmount(): HostedField;
  focus(): HostedField;
  clear(): HostedField;
  update(changes: { style?: FieldStyle; placeholder?: string }): HostedField;
  on(type: 'change', fn: (e: FieldChange) => void): HostedField;
  on(type: 'ready' | 'focus' | 'blur' | 'submit', fn: (e: { kind: FieldKind }) => void): HostedField;
  on(type: 'unavailable', fn: (e: { kind: FieldKind; code: string }) => void): HostedField;
  off(type: string, fn: (...args: never[]) => void): HostedField;
}

/** Hosted fields: card inputs in iframes of the vault, for PCI SAQ A. */
export interface Fields {
  readonly locale: Locale;
  create(kind: FieldKind, options?: { placeholder?: string; title?: string }): HostedField;
  getElement(kind: FieldKind): HostedField | null;
  /** Resolves once every mounted field is ready. */
  ready(timeoutMs?: number): Promise<void>;
  /** Validates, seals and posts the card inside the frames; rejects with a `CardSealError`. */
  tokenize(options?: { name?: string }): Promise<Token>;
  /** Seals and posts the CVC field alone. */
  tokenizeCvc(): Promise<Token>;
}

/** Hosted fields (no `ready()` needed: the wasm loads inside the iframes). */
export function fields(options: FieldsOptions): Fields;

/** The form mode of hosted fields: `[data-cardseal-field]` placeholders in a `<form>`. */
export function attachFields(form: HTMLFormElement | string, options: FieldsOptions & { submit?: boolean; retryWindowMs?: number }):
  { form: HTMLFormElement; fields: Fields; started: Promise<void>; detach(): void };
