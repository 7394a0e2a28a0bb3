// `cardseal/fields`: hosted fields alone, without the wasm glue.
export { CardSealError, attachFields, fields } from './index.js';
export type { FieldChange, FieldKind, FieldStyle, Fields, FieldsOptions, HostedField, Token } from './index.js';
