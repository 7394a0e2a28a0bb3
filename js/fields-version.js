// Replaced by scripts/build.mjs with the version of the field documents the vault serves.
export const FIELDS_VERSION = 'dev';
