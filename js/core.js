// The public JS API of cardseal (DESIGN.md, "JavaScript API"): the CardSeal class here, the
// validators, formatters and messages from js/validate.js, the vault client in js/client.js.
import { attachForm } from './attach.js';
import { CardSealError } from './error.js';
import { Tokenizer } from './tokenizer.js';

export { CardSealError };
export {
  formatCardNumber, formatCvc, formatExpiry, messageFor, ready, resolveLocale, validateCard, validateCvc, validateExpiry,
  validateNumber,
} from './validate.js';

/**
 * Seals cards with the vault's key and tokenizes them (DESIGN.md, "JavaScript API"): the
 * keyed methods of js/tokenizer.js, and the form mode.
 */
export class CardSeal extends Tokenizer {
  /**
   * The snippet's form mode: formats and checks `[data-cardseal]` inputs as the customer types;
   * on submit tokenizes, clears them, adds the hidden `cardseal_token` input and submits.
   */
  attach(form, options) {
    return attachForm(this, form, options);
  }
}
