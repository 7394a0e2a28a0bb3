// Deterministic card numbers for the benchmark: a realistic mix of brands and lengths, valid
// and invalid, complete and half-typed, plain and with separators. The same seed always gives
// the same list, so every run and every library sees the same input.

// xorshift32: tiny, fast and reproducible; statistical quality is not the point here.
export function prng(seed) {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

// Prefix ranges (inclusive, as strings of equal length) and lengths per brand; weights in %.
const MIX = [
  { brand: 'visa', weight: 30, prefixes: [['4', '4']], lengths: [16, 16, 16, 13, 19] },
  { brand: 'mastercard', weight: 24, prefixes: [['51', '55'], ['2221', '2720']], lengths: [16] },
  { brand: 'amex', weight: 8, prefixes: [['34', '34'], ['37', '37']], lengths: [15] },
  { brand: 'discover', weight: 5, prefixes: [['6011', '6011'], ['644', '649'], ['65', '65']], lengths: [16, 19] },
  { brand: 'diners', weight: 3, prefixes: [['300', '305'], ['36', '36'], ['38', '39']], lengths: [14, 16] },
  { brand: 'jcb', weight: 3, prefixes: [['3528', '3589']], lengths: [16, 19] },
  { brand: 'unionpay', weight: 4, prefixes: [['62', '62']], lengths: [16, 17, 18, 19] },
  { brand: 'maestro', weight: 4, prefixes: [['5018', '5018'], ['5020', '5020'], ['5038', '5038'], ['6304', '6304'], ['6759', '6759']], lengths: [12, 13, 16, 19] },
  { brand: 'mir', weight: 2, prefixes: [['2200', '2204']], lengths: [16] },
  { brand: 'elo', weight: 2, prefixes: [['401178', '401178'], ['504175', '504175'], ['636368', '636368']], lengths: [16] },
  { brand: 'hipercard', weight: 1, prefixes: [['606282', '606282']], lengths: [16] },
  // Anything at all: unknown prefixes, too short, too long.
  { brand: null, weight: 14, prefixes: [['0', '9']], lengths: [1, 4, 8, 12, 16, 17, 20, 22] },
];

function pick(rand, list) {
  return list[Math.floor(rand() * list.length)];
}

function digits(rand, n) {
  let s = '';
  for (let i = 0; i < n; i++) s += Math.floor(rand() * 10);
  return s;
}

function prefixFrom(rand, [lo, hi]) {
  const v = Number(lo) + Math.floor(rand() * (Number(hi) - Number(lo) + 1));
  return String(v).padStart(lo.length, '0');
}

// The digit that makes `body + digit` pass the Luhn check.
export function luhnDigit(body) {
  let sum = 0;
  for (let i = body.length - 1, double = true; i >= 0; i--, double = !double) {
    let d = body.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

function groups(number, sizes, sep) {
  const out = [];
  let at = 0;
  for (const size of sizes) {
    if (at >= number.length) break;
    out.push(number.slice(at, at + size));
    at += size;
  }
  if (at < number.length) out.push(number.slice(at));
  return out.join(sep);
}

/** `count` card numbers as strings, the same for the same `seed`. */
export function generateNumbers(count, seed = 20251123) {
  const rand = prng(seed);
  const total = MIX.reduce((s, m) => s + m.weight, 0);
  const out = new Array(count);
  for (let i = 0; i < count; i++) {
    let r = rand() * total;
    const kind = MIX.find((m) => (r -= m.weight) < 0) ?? MIX[MIX.length - 1];
    const length = pick(rand, kind.lengths);
    const prefix = prefixFrom(rand, pick(rand, kind.prefixes)).slice(0, length);
    let number = prefix + digits(rand, Math.max(0, length - prefix.length - 1));
    number += luhnDigit(number);
    number = number.slice(0, length);

    const state = rand();
    if (state < 0.15) {
      // A typo: the check digit is off by one.
      const last = (Number(number[number.length - 1]) + 1) % 10;
      number = number.slice(0, -1) + last;
    } else if (state < 0.25) {
      // Half-typed, as the as-you-type verdict sees it.
      number = number.slice(0, 1 + Math.floor(rand() * (number.length - 1)));
    }

    const look = rand();
    if (look < 0.3) number = groups(number, kind.brand === 'amex' ? [4, 6, 5] : [4, 4, 4, 4], ' ');
    else if (look < 0.35) number = groups(number, [4, 4, 4, 4], '-');
    else if (look < 0.4) number = ` ${number} `;
    out[i] = number;
  }
  return out;
}
