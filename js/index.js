// Browser and bundler entry: call `await ready()` once, then use the API.
export * from './core.js';
