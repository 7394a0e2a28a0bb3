// Browser and bundler entry: call `await ready()` once, then use the API.
export * from './core.js';
export { attachFields, fields } from './fields.js';
