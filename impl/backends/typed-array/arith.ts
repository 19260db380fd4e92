/**
 * Rounding primitives of the typed-array kernels, written apart from spec/float
 * (which checks them): float32 rounding, a float32 fma, and the rounding of an
 * opmath (float32) value to float16 / bfloat16.
 */
import { fmaExact } from "../../../spec/float/fma.ts";
import { FORMATS } from "../../../spec/float/format.ts";
import { bfloat16ToFloat, floatToBfloat16, floatToHalf, halfToFloat } from "../../../tensor/half.ts";

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float32 neighbour of float32 value r in the direction of x (x ≠ r). */
function neighbour32(r: number, x: number): number {
  if (r === 0) return x > 0 ? 1.401298464324817e-45 : -1.401298464324817e-45;
  f32[0] = r;
  u32[0] = u32[0]! + ((x > r) === (r > 0) ? 1 : -1);
  return f32[0]!;
}

/**
 * x·y + z rounded once to float32, for float32 x, y, z. x·y is exact in
 * float64, so float64 x·y + z is off only by its own rounding; that matters
 * only when it lands exactly halfway between two float32 values, and then the
 * sign of the float64 addition's error (TwoSum) says which way to go.
 */
export function fma32(x: number, y: number, z: number): number {
  const product = x * y;
  const sum = product + z;
  const rounded = Math.fround(sum);
  if (rounded === sum || !Number.isFinite(sum)) return rounded;
  const other = neighbour32(rounded, sum);
  if (sum - rounded !== other - sum) return rounded; // not a midpoint: one rounding was enough
  const zz = sum - product;
  const error = product - (sum - zz) + (z - zz);
  if (error === 0) return rounded; // a true tie: fround already chose the even one
  return (error > 0) === (other > rounded) ? other : rounded;
}

const f64 = new Float64Array(1);
const words = new Uint32Array(f64.buffer); // [low, high] on little-endian hosts
const LOW = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 0 : 1;
const HIGH = 1 - LOW;

/** a + b rounded to odd: if inexact, the float64 with an odd last bit next to the exact sum. */
function sumRoundedToOdd(a: number, b: number): number {
  const sum = a + b;
  const bb = sum - a;
  const error = a - (sum - bb) + (b - bb);
  if (error === 0) return sum;
  f64[0] = sum;
  if ((words[LOW]! & 1) === 1) return sum;
  // step one unit in the last place towards the exact value (sum is non-zero here)
  const away = (error > 0) === (sum > 0);
  if (away) {
    words[LOW] = (words[LOW]! + 1) >>> 0;
    if (words[LOW] === 0) words[HIGH] = words[HIGH]! + 1;
  } else {
    if (words[LOW] === 0) words[HIGH] = words[HIGH]! - 1;
    words[LOW] = (words[LOW]! - 1) >>> 0;
  }
  return f64[0]!;
}

/**
 * float64 fma: Dekker's exact product, TwoSum, and one sum rounded to odd
 * (Boldo & Melquiond 2008), with plain float64 bit twiddling; inputs whose
 * exponents could underflow or overflow the error terms take the exact path.
 */
export function fma64(x: number, y: number, z: number): number {
  const uh = x * y;
  const au = Math.abs(uh);
  if (!(Math.abs(x) < 2 ** 500 && Math.abs(y) < 2 ** 500 && Math.abs(z) < 2 ** 1000 && au > 2 ** -900 && (z === 0 || Math.abs(z) > 2 ** -900))) {
    return fmaExact(x, y, z, FORMATS.float64);
  }
  const xc = 134217729 * x;
  const xh = xc - (xc - x);
  const xl = x - xh;
  const yc = 134217729 * y;
  const yh = yc - (yc - y);
  const yl = y - yh;
  const ul = xl * yl - (((uh - xh * yh) - xl * yh) - xh * yl);
  const th = z + uh;
  const uv = th - z;
  const tl = z - (th - uv) + (uh - uv);
  const result = th + sumRoundedToOdd(tl, ul);
  return result === 0 ? 0 : result;
}

/** Round a float32 value to the nearest float16, returned as a number. */
export function roundHalf(x: number): number {
  return halfToFloat(floatToHalf(x));
}

export function roundBfloat16(x: number): number {
  return bfloat16ToFloat(floatToBfloat16(x));
}
