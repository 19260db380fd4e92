/**
 * Values of each dtype to and from their bit patterns, as big-endian hex per
 * element (the golden files' encoding) — exact for every value, NaN, Inf and
 * -0 included (NaN payloads are not modelled by JavaScript numbers: a NaN
 * decodes to NaN and encodes to the dtype's canonical quiet NaN).
 */
import { bitsToF32, bitsToF64, f32ToBits, f64ToBits } from "./bits.ts";
import { FORMATS, roundToFormat } from "./format.ts";
import { DTYPE, type DType } from "./dtype.ts";

/** Hex digits per element of a dtype (a complex element: its real part's, then its imaginary part's). */
export function hexDigits(dtype: DType): number {
  return 2 * DTYPE[dtype].itemSize;
}

function halfBitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  return sign * (1024 + fraction) * 2 ** (exponent - 25);
}

function numberToHalfBits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === Infinity) return sign | 0x7c00;
  if (roundToFormat(a, FORMATS.float16) !== a) throw new RangeError(`${x} is not a float16 value`);
  if (a < 2 ** -14) return sign | (a / 2 ** -24); // subnormal or zero: an integer multiple of 2^-24
  // A normal float16 is a float32 with a narrower exponent and 13 trailing zero bits.
  const bits32 = f32ToBits(a);
  return sign | ((((bits32 >>> 23) - 127 + 15) << 10) | ((bits32 >>> 13) & 0x3ff));
}

/** The bits of one element of a real dtype, or one component of a complex one (value must be representable in it). */
export function elementBits(dtype: DType, x: number): bigint {
  switch (DTYPE[dtype].real) {
    case "float64":
      return f64ToBits(x);
    case "float32":
      if (Math.fround(x) !== x && !Number.isNaN(x)) throw new RangeError(`${x} is not a float32 value`);
      return BigInt(f32ToBits(x));
    case "float16":
      return BigInt(numberToHalfBits(x));
    case "bfloat16": {
      if (roundToFormat(x, FORMATS.bfloat16) !== x && !Number.isNaN(x)) throw new RangeError(`${x} is not a bfloat16 value`);
      return Number.isNaN(x) ? 0x7fc0n : BigInt(f32ToBits(x) >>> 16);
    }
  }
}

/** The value of one element of a real dtype, or one component of a complex one, from its bits. */
export function elementFromBits(dtype: DType, bits: bigint): number {
  switch (DTYPE[dtype].real) {
    case "float64":
      return bitsToF64(bits);
    case "float32":
      return bitsToF32(Number(bits));
    case "float16":
      return halfBitsToNumber(Number(bits));
    case "bfloat16":
      return bitsToF32(Number(bits) << 16);
  }
}

/** A tensor's values from its hex; a complex tensor's as (real, imaginary) pairs, each part its own element. */
export function decodeHex(dtype: DType, hex: string): number[] {
  if (DTYPE[dtype].complex) return decodeHex(DTYPE[dtype].real, hex);
  const digits = hexDigits(dtype);
  if (hex.length % digits !== 0) throw new RangeError(`hex length ${hex.length} is not a multiple of ${digits} (${dtype})`);
  const out: number[] = [];
  for (let i = 0; i < hex.length; i += digits) out.push(elementFromBits(dtype, BigInt(`0x${hex.slice(i, i + digits)}`)));
  return out;
}

export function encodeHex(dtype: DType, values: readonly number[]): string {
  if (DTYPE[dtype].complex) return encodeHex(DTYPE[dtype].real, values);
  const digits = hexDigits(dtype);
  return values.map((x) => elementBits(dtype, x).toString(16).padStart(digits, "0")).join("");
}
