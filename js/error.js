// The one error class of the package, in a module of its own so that the hosted-fields entry
// (fields.js) can share it without loading the wasm glue.

// The package's browser entries (pkg/index.js, pkg/fields.js) are one file each, so each holds
// its own copy of this class; `instanceof` goes by this mark instead of by the copy, so an
// error from either entry is a CardSealError of both.
const MARK = Symbol.for('cardseal.CardSealError');

/** The error every failure of the package is: `code`, `type`, `param` and, for HTTP, `status`. */
export class CardSealError extends Error {
  constructor(code, message, { type = 'invalid_request_error', param = null, status = undefined } = {}) {
    super(message);
    this.name = 'CardSealError';
    this.code = code;
    this.type = type;
    this.param = param;
    if (status !== undefined) this.status = status;
  }

  static [Symbol.hasInstance](value) {
    return value instanceof Error && value[MARK] === true;
  }
}

Object.defineProperty(CardSealError.prototype, MARK, { value: true });
