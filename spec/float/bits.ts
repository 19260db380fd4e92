/**
 * IEEE-754 bit patterns of JavaScript numbers.
 *
 * Every value the spec produces is judged by its bit pattern (SameValue
 * semantics: -0 differs from +0, NaN payloads are kept), so this module is
 * the one place where numbers become bits and back.
 */

const view = new DataView(new ArrayBuffer(8));

/**
 * SameValue (Object.is), spelled out: a number read from a field and handed to
 * Object.is is boxed first, an allocation per call on a hot path, where ===
 * compares it in place. -0 differs from +0; NaN is NaN.
 */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return a !== 0 || 1 / (a as number) === 1 / (b as number);
  return a !== a && b !== b;
}

/** The 64 bits of a float64, as an unsigned BigInt. */
export function f64ToBits(x: number): bigint {
  view.setFloat64(0, x);
  return view.getBigUint64(0);
}

export function bitsToF64(bits: bigint): number {
  view.setBigUint64(0, BigInt.asUintN(64, bits));
  return view.getFloat64(0);
}

/** The 32 bits of a float32 (x must already be a float32 value). */
export function f32ToBits(x: number): number {
  view.setFloat32(0, x);
  return view.getUint32(0);
}

export function bitsToF32(bits: number): number {
  view.setUint32(0, bits >>> 0);
  return view.getFloat32(0);
}

/** Hex of the bit pattern, zero-padded: 16 digits for float64, 8 for float32. */
export function f64Hex(x: number): string {
  return f64ToBits(x).toString(16).padStart(16, "0");
}

export function f32Hex(x: number): string {
  return f32ToBits(x).toString(16).padStart(8, "0");
}

/** The high 32 bits (sign, exponent, top of the fraction) of a float64's bit pattern: no BigInt, for hot paths. */
export function f64HighWord(x: number): number {
  view.setFloat64(0, x);
  return view.getUint32(0);
}

/** The low 32 bits of a float64's bit pattern. */
export function f64LowWord(x: number): number {
  view.setFloat64(0, x);
  return view.getUint32(4);
}

/** x with the low 32 bits of its bit pattern replaced by `low` (modulo 2^32). */
export function withLowWord(x: number, low: number): number {
  view.setFloat64(0, x);
  view.setUint32(4, low >>> 0);
  return view.getFloat64(0);
}

/** The float64 whose bit pattern is high · 2^32 + low (each taken modulo 2^32). */
export function wordsToF64(high: number, low: number): number {
  view.setUint32(0, high >>> 0);
  view.setUint32(4, low >>> 0);
  return view.getFloat64(0);
}

/** The next float64 above x (towards +Infinity); NaN and +Infinity map to themselves. */
export function nextUp(x: number): number {
  if (Number.isNaN(x) || x === Infinity) return x;
  if (x === 0) return Number.MIN_VALUE;
  // the bit pattern plus one (x > 0) or minus one (x < 0), carried between the two words
  const high = f64HighWord(x);
  const low = f64LowWord(x);
  if (x > 0) return low === 0xffffffff ? wordsToF64(high + 1, 0) : wordsToF64(high, low + 1);
  return low === 0 ? wordsToF64(high - 1, 0xffffffff) : wordsToF64(high, low - 1);
}

/** The next float64 below x (towards -Infinity). */
export function nextDown(x: number): number {
  return -nextUp(-x);
}
