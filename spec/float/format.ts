/**
 * The binary floating-point formats the spec rounds to, and exact rounding
 * into them.
 *
 * A finite float64 is a dyadic rational m·2^e; sums and products of such
 * numbers are dyadic too, so with BigInt they are computed exactly and then
 * rounded once, to nearest with ties to even. This is slow and obviously
 * right: the fast paths elsewhere (Math.fround, round-to-odd fma) are tested
 * against it.
 */
import { bitsToF64, f64ToBits } from "./bits.ts";

export type FloatFormatName = "float64" | "float32" | "float16" | "bfloat16";

export interface FloatFormat {
  readonly name: FloatFormatName;
  /** Significand bits, the implicit leading bit included. */
  readonly precision: number;
  /** Exponent of the smallest normal number. */
  readonly emin: number;
  /** Exponent of the largest finite number. */
  readonly emax: number;
}

export const FORMATS: Readonly<Record<FloatFormatName, FloatFormat>> = {
  float64: { name: "float64", precision: 53, emin: -1022, emax: 1023 },
  float32: { name: "float32", precision: 24, emin: -126, emax: 127 },
  float16: { name: "float16", precision: 11, emin: -14, emax: 15 },
  bfloat16: { name: "bfloat16", precision: 8, emin: -126, emax: 127 },
};

/** An exact dyadic rational: mantissa · 2^exponent (the mantissa carries the sign). */
export interface Dyadic {
  readonly mantissa: bigint;
  readonly exponent: number;
}

/** The exact value of a finite float64. */
export function toDyadic(x: number): Dyadic {
  if (!Number.isFinite(x)) throw new RangeError(`toDyadic needs a finite number, got ${x}`);
  const bits = f64ToBits(x);
  const negative = bits >> 63n === 1n;
  const biased = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  const mantissa = biased === 0 ? fraction : fraction | (1n << 52n);
  const exponent = (biased === 0 ? 1 : biased) - 1075;
  return { mantissa: negative ? -mantissa : mantissa, exponent };
}

/** 2^k as a float64, built from its bits (k in [-1074, 1023]). */
export function pow2(k: number): number {
  if (k >= -1022) return bitsToF64(BigInt(k + 1023) << 52n);
  return bitsToF64(1n << BigInt(k + 1074));
}

function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

/**
 * Round the exact value mantissa·2^exponent to the nearest number of `format`
 * (ties to even), returned as a JavaScript number. An exact zero comes back as
 * +0; callers that know the sign of a zero apply it themselves.
 */
export function roundDyadic(value: Dyadic, format: FloatFormat): number {
  const { mantissa, exponent } = value;
  if (mantissa === 0n) return 0;
  const negative = mantissa < 0n;
  const magnitude = negative ? -mantissa : mantissa;
  const top = exponent + bitLength(magnitude) - 1; // exponent of the leading bit
  // The quantum (weight of the last significand bit) of the result; fixed below emin.
  const quantum = Math.max(top, format.emin) - (format.precision - 1);
  let kept: bigint;
  if (exponent >= quantum) {
    kept = magnitude << BigInt(exponent - quantum);
  } else {
    const shift = BigInt(quantum - exponent);
    kept = magnitude >> shift;
    const rest = magnitude - (kept << shift);
    const half = 1n << (shift - 1n);
    if (rest > half || (rest === half && (kept & 1n) === 1n)) kept += 1n;
  }
  // kept < 2^(precision+1) here; the carry of a round-up may reach the next binade.
  const resultTop = quantum + bitLength(kept) - 1;
  let result: number;
  if (resultTop > format.emax) result = Infinity;
  else result = Number(kept) * pow2(quantum); // exact: kept·2^quantum is representable
  return negative ? -result : result;
}

/** Round a float64 value to `format` (exact single rounding, ±0, ±Inf and NaN kept). */
export function roundToFormat(x: number, format: FloatFormat): number {
  if (!Number.isFinite(x) || x === 0) return x;
  if (format.name === "float64") return x;
  if (format.name === "float32") return Math.fround(x); // correctly rounded by the engine
  return roundDyadic(toDyadic(x), format);
}
