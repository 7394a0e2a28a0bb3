// The one error class of the package, in a module of its own so that the hosted-fields entry
// (fields.js) can share it without loading the wasm glue.

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
}
