/**
 * `pow(x, y)` exactly as glibc computes it on x86-64, so that the spec's
 * host-side scalars equal CPython's `x ** y` bit for bit.
 *
 * Why not Math.pow: V8's pow differs from glibc's by 1 ULP on 4–10 % of the
 * inputs NAdam uses (0.999**t, 0.96**(t·ψ)). Why not a correctly rounded pow:
 * glibc's pow is not correctly rounded either (worst case 0.52 ULP), e.g.
 * CPython's `x ** 0.5` differs from `math.sqrt(x)` on 0.55 % of x = 1 - 0.999**t.
 * So this is glibc's algorithm (sysdeps/ieee754/dbl-64/e_pow.c, from Arm's
 * optimized-routines), step for step, in float64:
 *
 *   log(x) = k·ln2 + log(c) + log1p(z/c - 1)   (x = 2^k·z, c from a 128-entry table)
 *            computed as hi + lo with ~68 bits of precision,
 *   y·log(x) = ehi + elo                        (a double-double product),
 *   exp(ehi + elo) = 2^(i/128)·2^m·exp(r)       (i, m from rounding ehi·128/ln2).
 *
 * glibc selects at load time a build compiled with FMA instructions when the CPU
 * has FMA and AVX2 (every x86-64 CPU of the last decade); that build takes the
 * `HAVE_FAST_FMA` branches, which round differently. `GLIBC_POW_FMA` is that
 * variant and the default; `glibcPowNoFma` is the generic build, for CPUs
 * without FMA. Only round-to-nearest is modelled, and no errno / exception flags.
 */
import { bitsToF64, f64HighWord, f64LowWord, f64ToBits, wordsToF64 } from "./bits.ts";
import { FMA64_IO, fma64, fma64InPlace } from "./fma.ts";
import { hexFloat } from "./hex-float.ts";
import { EXP_TABLE_BITS, POW_LOG_OFF, POW_LOG_TABLE_BITS, expDataTable, powLogTable } from "./pow-tables.ts";

const LN2_HI = hexFloat("0x1.62e42fefa3800p-1");
const LN2_LO = hexFloat("0x1.ef35793c76730p-45");
/** log1p(r) ≈ r + A0·r² + r³·(A1 + A2·r + …); scaled as glibc evaluates them (A0 = -1/2). */
const A = [
  -0.5,
  hexFloat("0x1.555555555556p-2") * -2,
  hexFloat("-0x1.0000000000006p-2") * -2,
  hexFloat("0x1.999999959554ep-3") * 4,
  hexFloat("-0x1.555555529a47ap-3") * 4,
  hexFloat("0x1.2495b9b4845e9p-3") * -8,
  hexFloat("-0x1.0002b8b263fc3p-3") * -8,
] as const;

const EXP_N = 1 << EXP_TABLE_BITS;
const INV_LN2_N = hexFloat("0x1.71547652b82fep0") * EXP_N;
const NEG_LN2_HI_N = hexFloat("-0x1.62e42fefa0000p-8");
const NEG_LN2_LO_N = hexFloat("-0x1.cf79abc9e3b3ap-47");
const SHIFT = hexFloat("0x1.8p52");
/** exp(r) - 1 ≈ r + C2·r² + C3·r³ + C4·r⁴ + C5·r⁵ on |r| <= ln2/256. */
const C2 = hexFloat("0x1.ffffffffffdbdp-2");
const C3 = hexFloat("0x1.555555555543cp-3");
const C4 = hexFloat("0x1.55555cf172b91p-5");
const C5 = hexFloat("0x1.1111167a4d017p-7");
// Parsed once here, not on every call (hexFloat is a RegExp and a BigInt).
const TWO_P1009 = hexFloat("0x1p1009");
const TWO_M1022 = hexFloat("0x1p-1022");
const TWO_P52 = hexFloat("0x1p52");
const TOP12_TWO_M54 = top12(hexFloat("0x1p-54"));
const TOP12_512 = top12(512.0);
const TOP12_1024 = top12(1024.0);

const SIGN_BIAS = 0x800 << EXP_TABLE_BITS;
const MASK64 = (1n << 64n) - 1n;
// The arithmetic on bit patterns works on their two 32-bit words (BigInts would allocate on every call, and
// the scalars of every NAdam step take four pows); only the rare special cases below use BigInts.
/** POW_LOG_OFF's high word (its low word is zero). */
const POW_LOG_OFF_HIGH = Number(POW_LOG_OFF >> 32n);

/** Top 12 bits (sign and exponent) of a float64. */
function top12(x: number): number {
  return f64HighWord(x) >>> 20;
}

/** The exp table as numbers: T[k] and the two words of H[k]'s bits - (k << 45) (expDataTable's pairs). */
let expWords: { tail: Float64Array; high: Uint32Array; low: Uint32Array } | undefined;
function expTableWords(): { tail: Float64Array; high: Uint32Array; low: Uint32Array } {
  if (expWords === undefined) {
    const table = expDataTable();
    const tail = new Float64Array(EXP_N);
    const high = new Uint32Array(EXP_N);
    const low = new Uint32Array(EXP_N);
    for (let k = 0; k < EXP_N; k++) {
      tail[k] = bitsToF64(table[2 * k]!);
      high[k] = Number(table[2 * k + 1]! >> 32n);
      low[k] = Number(table[2 * k + 1]! & 0xffffffffn);
    }
    expWords = { tail, high, low };
  }
  return expWords;
}

const words = (high: number, low: number): bigint => (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0);

interface Variant {
  /** The build uses fma instructions: its explicit fma() calls, and GCC's contraction of a·b + c. */
  readonly fma: boolean;
}

/**
 * a·b + c as the compiled C computes it: GCC (-ffp-contract=fast, its default
 * for GNU C) fuses a product into the sum that is its only use when it targets
 * FMA hardware. Each call site below is such a product.
 */
function mad(a: number, b: number, c: number, variant: Variant): number {
  if (!variant.fma) return a * b + c;
  // fma64 spelled out: one call fewer to inline at each of the dozen call sites (a call the engine leaves, past its
  // budget for a function, would box a, b, c and the result)
  const io = FMA64_IO;
  io[0] = a;
  io[1] = b;
  io[2] = c;
  fma64InPlace();
  return io[3]!;
}

/**
 * The numbers pow's functions pass one another, by index below. A float64
 * passed to, or returned from, a call the engine does not inline (logInline,
 * expInline and powInPlace are too large to be) is boxed, a heap allocation
 * each, as is one stored in a module variable; an element of a Float64Array is
 * not. NAdam's host scalars take three pows a step, so a step would otherwise
 * allocate (see fma.ts's FMA64_IO for the same reason).
 */
const POW_IO = new Float64Array(5);
/** pow's arguments, in, and its result (powInPlace's, expInline's). */
const IO_X = 0;
const IO_Y = 1;
const IO_RESULT = 2;
/** log(x) as hi + tail (logInline's results); exp's argument as ehi + elo (expInline's). */
const IO_HI = 3;
const IO_TAIL = 4;

/**
 * glibcPow for a caller that must not allocate: x in GLIBC_POW_IO[0] and y in
 * [1]; glibcPowInPlace() leaves x ** y in [2] ([3] and [4] are pow's own).
 * NAdam's host scalars take their pows so, every step.
 */
export const GLIBC_POW_IO: Float64Array = POW_IO;
export function glibcPowInPlace(): void {
  powInPlace(FMA_VARIANT);
}
/** x's bits, normalised, as two words (logInline's argument): a word above 2^30 passed to a call would be boxed too. */
const IX_WORDS = new Uint32Array(2);

/** POW_IO[IO_HI] + POW_IO[IO_TAIL] = log(x) (the tail carries ~15 more bits), for x's bits, normalised, in IX_WORDS. */
function logInline(variant: Variant): void {
  const ixHigh = IX_WORDS[0]!;
  const ixLow = IX_WORDS[1]!;
  const logTable = powLogTable();
  // tmp = ix - POW_LOG_OFF: the low word is ix's, the high word as a signed int32 (k is its arithmetic shift)
  const tmpHigh = (ixHigh - POW_LOG_OFF_HIGH) | 0;
  const i = (tmpHigh >>> (52 - 32 - POW_LOG_TABLE_BITS)) & ((1 << POW_LOG_TABLE_BITS) - 1);
  const k = tmpHigh >> 20;
  const izHigh = (ixHigh - (tmpHigh & 0xfff00000)) >>> 0;
  const z = wordsToF64(izHigh, ixLow);
  const kd = k;
  const { invc, logc, logctail } = logTable[i]!;

  // r = z/c - 1, exact: invc has few bits, |r| < 1/N.
  let r: number;
  let rhi = 0;
  let rlo = 0;
  if (variant.fma) {
    r = fma64(z, invc, -1.0);
  } else {
    // (iz + 2^31) with its low word cleared: z rounded to its high 32 bits
    const zhi = wordsToF64(izHigh + (ixLow >= 0x80000000 ? 1 : 0), 0);
    const zlo = z - zhi;
    rhi = zhi * invc - 1.0;
    rlo = zlo * invc;
    r = rhi + rlo;
  }

  // k·ln2 + log(c) + r, with the rounding errors gathered in lo1, lo2.
  const t1 = mad(kd, LN2_HI, logc, variant);
  const t2 = t1 + r;
  const lo1 = mad(kd, LN2_LO, logctail, variant);
  const lo2 = t1 - t2 + r;

  const ar = A[0] * r;
  const ar2 = r * ar;
  const ar3 = r * ar2;
  let hi: number;
  let lo3: number;
  let lo4: number;
  if (variant.fma) {
    hi = t2 + ar2;
    lo3 = fma64(ar, r, -ar2);
    lo4 = t2 - hi + ar2;
  } else {
    const arhi = A[0] * rhi;
    const arhi2 = rhi * arhi;
    hi = t2 + arhi2;
    lo3 = rlo * (ar + arhi);
    lo4 = t2 - hi + arhi2;
  }
  const q = mad(ar2, mad(ar2, mad(r, A[6], A[5], variant), mad(r, A[4], A[3], variant), variant), mad(r, A[2], A[1], variant), variant);
  // lo = lo1 + lo2 + lo3 + lo4 + ar3·q
  const lo = mad(ar3, q, lo1 + lo2 + lo3 + lo4, variant);
  const y = hi + lo;
  POW_IO[IO_HI] = y;
  POW_IO[IO_TAIL] = hi - y + lo;
}

/** scale·(1 + tmp) where scale's exponent may have over- or underflowed (|k| large). */
function specialCase(tmp: number, sbits: bigint, ki: bigint, variant: Variant): number {
  if ((ki & 0x80000000n) === 0n) {
    // k > 0: the exponent of scale may have overflowed by <= 460.
    const scale = bitsToF64((sbits - (1009n << 52n)) & MASK64);
    return TWO_P1009 * mad(scale, tmp, scale, variant);
  }
  // k < 0: take care of double rounding into the subnormal range.
  const shifted = (sbits + (1022n << 52n)) & MASK64;
  const scale = bitsToF64(shifted);
  let y = mad(scale, tmp, scale, variant);
  if (Math.abs(y) < 1.0) {
    const one = y < 0.0 ? -1.0 : 1.0;
    let lo = mad(scale, tmp, scale - y, variant);
    const hi = one + y;
    lo = one - hi + y + lo;
    y = hi + lo - one;
    if (y === 0) y = bitsToF64(shifted & 0x8000000000000000n); // sign of zero
  }
  return TWO_M1022 * y;
}

/** POW_IO[IO_RESULT] = sign·exp(x + xtail) for x, xtail in POW_IO[IO_HI], POW_IO[IO_TAIL], |xtail| tiny relative to x. */
function expInline(signBias: number, variant: Variant): void {
  const io = POW_IO;
  const x = io[IO_HI]!;
  const xtail = io[IO_TAIL]!;
  let abstop = top12(x) & 0x7ff;
  if (abstop - TOP12_TWO_M54 >= TOP12_512 - TOP12_TWO_M54 || abstop < TOP12_TWO_M54) {
    if (abstop < TOP12_TWO_M54) {
      // Tiny x: exp(x) rounds to 1 + x.
      const one = 1.0 + x;
      io[IO_RESULT] = signBias !== 0 ? -one : one;
      return;
    }
    if (abstop >= TOP12_1024) {
      const negative = f64HighWord(x) >>> 31 === 1;
      const huge = negative ? 0 : Infinity;
      io[IO_RESULT] = signBias !== 0 ? -huge : huge;
      return;
    }
    abstop = 0; // large |x|: handled by specialCase below
  }

  // x = k·ln2/N + r, |r| <= ln2/2N; exp(x) = 2^(k/N)·exp(r).
  let kd = mad(INV_LN2_N, x, SHIFT, variant);
  const kiHigh = f64HighWord(kd);
  const kiLow = f64LowWord(kd);
  kd -= SHIFT;
  let r = mad(kd, NEG_LN2_LO_N, mad(kd, NEG_LN2_HI_N, x, variant), variant);
  r += xtail;
  // (the call only on the first pow: a call site seldom taken is not inlined, and leaves the engine's inlining budget to mad's)
  const table = expWords ?? expTableWords();
  const idx = kiLow & (EXP_N - 1);
  // top = (ki + signBias) << 45, modulo 2^64: only the low 19 bits of the sum count, and they land in the high word
  const topHigh = (kiLow + signBias) << (52 - 32 - EXP_TABLE_BITS);
  const tail = table.tail[idx]!;
  const sbitsHigh = (table.high[idx]! + topHigh) >>> 0;
  const sbitsLow = table.low[idx]!;
  const r2 = r * r;
  // tmp = tail + r + r2·(C2 + r·C3) + r2²·(C4 + r·C5)
  const tmp = mad(r2 * r2, mad(r, C5, C4, variant), mad(r2, mad(r, C3, C2, variant), tail + r, variant), variant);
  if (abstop === 0) {
    io[IO_RESULT] = specialCase(tmp, words(sbitsHigh, sbitsLow), words(kiHigh, kiLow), variant); // (rare: BigInts allocate anyway)
    return;
  }
  const scale = wordsToF64(sbitsHigh, sbitsLow);
  io[IO_RESULT] = mad(scale, tmp, scale, variant);
}

/** 0 if y is not an integer, 1 if odd, 2 if even (iy: bits of a finite non-zero y). */
function checkInt(iy: bigint): 0 | 1 | 2 {
  const e = Number((iy >> 52n) & 0x7ffn);
  if (e < 0x3ff) return 0;
  if (e > 0x3ff + 52) return 2;
  const unit = 1n << BigInt(0x3ff + 52 - e);
  if ((iy & (unit - 1n)) !== 0n) return 0;
  return (iy & unit) !== 0n ? 1 : 2;
}

function isZeroInfNan(bits: bigint): boolean {
  return ((2n * bits - 1n) & MASK64) >= 2n * f64ToBits(Infinity) - 1n;
}

/** A special case's result (outside the usual positive, normal x and moderate y, where BigInts allocate anyway). */
function special(result: number): void {
  POW_IO[IO_RESULT] = result;
}

/** POW_IO[IO_RESULT] = pow(x, y) for x, y in POW_IO[IO_X], POW_IO[IO_Y]. */
function powInPlace(variant: Variant): void {
  const io = POW_IO;
  const x = io[IO_X]!;
  const y = io[IO_Y]!;
  let signBias = 0;
  let topx = top12(x);
  const topy = top12(y);
  let ixHigh = f64HighWord(x);
  let ixLow = f64LowWord(x);
  if (topx - 0x001 >= 0x7ff - 0x001 || topx - 0x001 < 0 || (topy & 0x7ff) - 0x3be >= 0x43e - 0x3be || (topy & 0x7ff) < 0x3be) {
    // Special cases: x subnormal, zero, negative, inf or nan; |y| tiny, huge, inf or nan.
    let ix = f64ToBits(x);
    const iy = f64ToBits(y);
    const ONE_BITS = f64ToBits(1.0);
    const INF_BITS = f64ToBits(Infinity);
    if (isZeroInfNan(iy)) {
      if ((2n * iy & MASK64) === 0n) return special(1.0);
      if (ix === ONE_BITS) return special(1.0);
      if ((2n * ix & MASK64) > 2n * INF_BITS || (2n * iy & MASK64) > 2n * INF_BITS) return special(x + y);
      if ((2n * ix & MASK64) === 2n * ONE_BITS) return special(1.0);
      if (((2n * ix & MASK64) < 2n * ONE_BITS) === !(iy >> 63n)) return special(0.0);
      return special(y * y);
    }
    if (isZeroInfNan(ix)) {
      let x2 = x * x;
      if (ix >> 63n && checkInt(iy) === 1) x2 = -x2;
      return special(iy >> 63n ? 1 / x2 : x2);
    }
    // x and y are finite and non-zero.
    if (ix >> 63n) {
      const yint = checkInt(iy);
      if (yint === 0) return special(NaN);
      if (yint === 1) signBias = SIGN_BIAS;
      ix &= 0x7fffffffffffffffn;
      topx &= 0x7ff;
    }
    if ((topy & 0x7ff) - 0x3be >= 0x43e - 0x3be || (topy & 0x7ff) < 0x3be) {
      if (ix === ONE_BITS) return special(1.0);
      if ((topy & 0x7ff) < 0x3be) return special(ix > ONE_BITS ? 1.0 + y : 1.0 - y); // |y| < 2^-65
      return special((ix > ONE_BITS) === topy < 0x800 ? Infinity : 0);
    }
    if (topx === 0) {
      // Subnormal x: normalise so that the exponent becomes negative.
      ix = f64ToBits(bitsToF64(ix) * TWO_P52) & 0x7fffffffffffffffn;
      ix -= 52n << 52n;
    }
    ixHigh = Number((ix >> 32n) & 0xffffffffn);
    ixLow = Number(ix & 0xffffffffn);
  }

  IX_WORDS[0] = ixHigh;
  IX_WORDS[1] = ixLow;
  logInline(variant);
  const hi = io[IO_HI]!;
  const lo = io[IO_TAIL]!;
  let ehi: number;
  let elo: number;
  if (variant.fma) {
    ehi = y * hi;
    elo = mad(y, lo, fma64(y, hi, -ehi), variant);
  } else {
    // y and hi with their low 27 bits cleared
    const yhi = wordsToF64(f64HighWord(y), f64LowWord(y) & 0xf8000000);
    const ylo = y - yhi;
    const lhi = wordsToF64(f64HighWord(hi), f64LowWord(hi) & 0xf8000000);
    const llo = hi - lhi + lo;
    ehi = yhi * lhi;
    elo = ylo * lhi + y * llo;
  }
  io[IO_HI] = ehi;
  io[IO_TAIL] = elo;
  expInline(signBias, variant);
}

/** glibc's pow as selected on x86-64 CPUs with FMA and AVX2: what CPython's `**` gives there. */
export function glibcPow(x: number, y: number): number {
  POW_IO[IO_X] = x;
  POW_IO[IO_Y] = y;
  powInPlace(FMA_VARIANT);
  return POW_IO[IO_RESULT]!;
}

/** glibc's generic pow build (CPUs without FMA). */
export function glibcPowNoFma(x: number, y: number): number {
  POW_IO[IO_X] = x;
  POW_IO[IO_Y] = y;
  powInPlace(NO_FMA_VARIANT);
  return POW_IO[IO_RESULT]!;
}

const FMA_VARIANT: Variant = { fma: true };
const NO_FMA_VARIANT: Variant = { fma: false };
