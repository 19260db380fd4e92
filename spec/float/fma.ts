/**
 * Fused multiply-add, x·y + z rounded once, which JavaScript lacks.
 *
 * PyTorch's vectorized CPU kernels (AVX2/AVX512) fuse the multiply and the add
 * in `add(alpha=)`, `addcmul` and `lerp`; reproducing them bit for bit needs a
 * true fma in float32 and in float64. "Multiply in float64, add, then round to
 * float32" is not enough: the float64 sum is itself rounded, and rounding twice
 * can land on the wrong float32 when the first rounding lands on a float32
 * midpoint (see fma.test.ts for constructed cases).
 */
import { FORMATS, roundDyadic, roundToFormat, toDyadic, type Dyadic, type FloatFormat } from "./format.ts";
import { f64LowWord, nextDown, nextUp, withLowWord } from "./bits.ts";

/** x·y + z computed exactly, then rounded once to `format` (the reference, BigInt based). */
export function fmaExact(x: number, y: number, z: number, format: FloatFormat): number {
  if (!Number.isFinite(x) || !Number.isFinite(y) || !Number.isFinite(z)) {
    // Infinities and NaN propagate exactly as in the unfused expression.
    return x * y + z;
  }
  // A zero product leaves z (or the IEEE sign of a sum of zeros) unchanged.
  if (x === 0 || y === 0) return roundToFormat(x * y + z, format);
  const a = toDyadic(x);
  const b = toDyadic(y);
  const c = toDyadic(z);
  const productExp = a.exponent + b.exponent;
  const exponent = Math.min(productExp, c.exponent);
  const sum: Dyadic = {
    mantissa:
      ((a.mantissa * b.mantissa) << BigInt(productExp - exponent)) + (c.mantissa << BigInt(c.exponent - exponent)),
    exponent,
  };
  // An exact cancellation gives +0 in round-to-nearest.
  return roundDyadic(sum, format);
}

/** Veltkamp's split constant 2^27 + 1: x = hi + lo with 26-bit halves. */
const SPLITTER = 134217729;

function roundToOddSum(a: number, b: number): number {
  const sum = a + b;
  const bVirtual = sum - a;
  const error = a - (sum - bVirtual) + (b - bVirtual);
  if (error === 0 || (f64LowWord(sum) & 1) === 1) return sum;
  return error > 0 ? nextUp(sum) : nextDown(sum);
}

/**
 * float64 fma. Fast path (Boldo & Melquiond, "Emulation of FMA and correctly
 * rounded sums: proved algorithms using rounding to odd", 2008): the exact
 * product uh + ul (Dekker), th + tl = c + uh (TwoSum), then
 * fma = RN(th + RO(tl + ul)). Its proof needs no underflow in ul and no
 * overflow in the split, so inputs outside a safe exponent range take the
 * exact BigInt path instead.
 */
export function fma64(x: number, y: number, z: number): number {
  const io = FMA64_IO;
  io[0] = x;
  io[1] = y;
  io[2] = z;
  fma64InPlace();
  return io[3]!;
}

/**
 * fma64InPlace's arguments ([0], [1], [2]) and result ([3]). A number passed to,
 * or returned from, a call the engine does not inline is boxed, an allocation
 * each; numbers in a Float64Array are not (the host's pow calls fma64 a dozen
 * times, at every NAdam step).
 */
export const FMA64_IO = new Float64Array(4);

/** FMA64_IO[3] = fma64(FMA64_IO[0], FMA64_IO[1], FMA64_IO[2]). */
export function fma64InPlace(): void {
  const io = FMA64_IO;
  const x = io[0]!;
  const y = io[1]!;
  const z = io[2]!;
  if (x === 0 || y === 0) {
    // fmaExact's own answer for a zero product (pow meets one at every x whose exponent k is 0)
    io[3] = x * y + z;
    return;
  }
  const uh = x * y;
  const ax = Math.abs(x);
  const ay = Math.abs(y);
  const az = Math.abs(z);
  const safe =
    ax < 2 ** 500 && ay < 2 ** 500 && az < 2 ** 1000 &&
    (uh === 0 ? false : Math.abs(uh) > 2 ** -900) && (az === 0 || az > 2 ** -900);
  if (!safe) {
    io[3] = fmaExact(x, y, z, FORMATS.float64);
    return;
  }
  // Dekker's exact product: uh + ul = x·y.
  const xc = SPLITTER * x;
  const xh = xc - (xc - x);
  const xl = x - xh;
  const yc = SPLITTER * y;
  const yh = yc - (yc - y);
  const yl = y - yh;
  const ul = xl * yl - (((uh - xh * yh) - xl * yh) - xh * yl);
  // TwoSum: th + tl = z + uh.
  const th = z + uh;
  const uhVirtual = th - z;
  const tl = z - (th - uhVirtual) + (uh - uhVirtual);
  // roundToOddSum(tl, ul) without a call: an even last bit of an inexact, finite, non-zero sum moves one unit on the low
  // word towards the error (up in magnitude when the error has the sum's sign), where no carry or borrow leaves the word
  const sum = tl + ul;
  const bVirtual = sum - tl;
  const error = tl - (sum - bVirtual) + (ul - bVirtual);
  let odd = sum;
  if (error !== 0) {
    const low = f64LowWord(sum);
    if ((low & 1) === 0) {
      const up = error > 0 === sum > 0;
      odd = Number.isFinite(sum) && sum !== 0 && !Number.isNaN(error) && (up || low !== 0) ? withLowWord(sum, up ? low + 1 : low - 1) : roundToOddSum(tl, ul);
    }
  }
  const result = th + odd;
  // An exact zero from cancellation is +0 in round-to-nearest, as fma gives.
  io[3] = result === 0 ? 0 : result;
}

/**
 * float32 fma for float32 inputs, fast path: the product of two float32 values
 * is exact in float64, and the float64 sum is made "round to odd" (if inexact,
 * its last bit is forced to 1 in the direction of the error), which float32
 * rounding then turns into the correctly rounded result (53 >= 24 + 2 bits).
 */
export function fma32(x: number, y: number, z: number): number {
  const product = x * y;
  const sum = product + z;
  if (!Number.isFinite(sum)) return Math.fround(sum);
  // TwoSum: the exact error of the float64 addition.
  const zVirtual = sum - product;
  const error = product - (sum - zVirtual) + (z - zVirtual);
  if (error === 0 || (f64LowWord(sum) & 1) === 1) return Math.fround(sum);
  return Math.fround(error > 0 ? nextUp(sum) : nextDown(sum));
}
