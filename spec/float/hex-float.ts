/**
 * C99 hexadecimal floating literals ("0x1.62e42fefa38p-1"), which JavaScript
 * lacks. Constants taken from C sources stay in the exact form they were
 * published in, so a reader can compare them digit for digit.
 */
export function hexFloat(literal: string): number {
  const match = /^([+-]?)0x([0-9a-f]+)(?:\.([0-9a-f]*))?p([+-]?\d+)$/i.exec(literal);
  if (match === null) throw new SyntaxError(`not a hexadecimal float literal: ${literal}`);
  const [, sign = "", intDigits = "", fracDigits = "", exp = "0"] = match;
  // The digits form an integer mantissa; every literal used here fits in 53 bits, so
  // the conversion and the scaling by a power of two are exact.
  const mantissa = BigInt(`0x${intDigits}${fracDigits}`);
  if (mantissa >= 1n << 53n) throw new RangeError(`hexadecimal literal has more than 53 significant bits: ${literal}`);
  const value = Number(mantissa) * 2 ** (Number(exp) - 4 * fracDigits.length);
  return sign === "-" ? -value : value;
}
