// The style allow-list of hosted fields (DESIGN.md, "Hosted fields"): the merchant page and the
// field document both run it, so a style that is dropped is dropped with a warning where the
// merchant sees it, and never reaches the field document's CSS even if the page skipped it.
// Nothing here can load anything: no url(), no @import, no expression(), no unknown property,
// and no selector but the few pseudo-classes below.

/** The properties a field's text may take, camelCase as in `element.style`. */
export const STYLE_PROPERTIES = ['color', 'fontFamily', 'fontSize', 'fontSmoothing', 'fontStyle', 'fontVariant',
  'fontWeight', 'letterSpacing', 'lineHeight', 'padding', 'textAlign', 'textDecoration', 'textShadow', 'textTransform'];
/** The states a style has: always, once complete, while empty, while invalid. */
export const STYLE_STATES = ['base', 'complete', 'empty', 'invalid'];
/** The selectors allowed inside a state. */
export const STYLE_PSEUDOS = ['::placeholder', ':focus', ':hover'];

// Anything that could fetch, run, or break out of a declaration.
const FORBIDDEN = /url\s*\(|image(?:-set)?\s*\(|expression\s*\(|@import|javascript:|attr\s*\(|var\s*\(|[;{}<>\\"']|\/\*|\*\//i;

function declarations(block, where, warn) {
  const out = {};
  for (const [key, value] of Object.entries(block)) {
    if (STYLE_PSEUDOS.includes(key) && value && typeof value === 'object') continue;
    if (!STYLE_PROPERTIES.includes(key)) {
      warn(`cardseal: style ${where}.${key} is not an allowed property; ignored`);
    } else if ((typeof value !== 'string' && typeof value !== 'number') || String(value).length > 200 || FORBIDDEN.test(String(value))) {
      warn(`cardseal: style ${where}.${key} has a value that is not allowed (no url(), @import, expression() or quotes); ignored`);
    } else {
      out[key] = String(value);
    }
  }
  return out;
}

/**
 * The allowed part of `style` (`{ base, complete, empty, invalid }`, each a map of properties
 * plus `::placeholder`, `:focus`, `:hover` maps); everything else is dropped with `warn`.
 */
export function sanitizeStyle(style, warn = (m) => console.warn(m)) {
  const clean = {};
  if (style === undefined || style === null) return clean;
  if (typeof style !== 'object') {
    warn('cardseal: style must be an object; ignored');
    return clean;
  }
  for (const [state, block] of Object.entries(style)) {
    if (!STYLE_STATES.includes(state) || !block || typeof block !== 'object') {
      warn(`cardseal: style.${state} is not one of ${STYLE_STATES.join(', ')}; ignored`);
      continue;
    }
    const out = declarations(block, state, warn);
    for (const pseudo of STYLE_PSEUDOS) {
      const inner = block[pseudo];
      if (inner && typeof inner === 'object') out[pseudo] = declarations(inner, `${state}${pseudo}`, warn);
    }
    clean[state] = out;
  }
  return clean;
}
