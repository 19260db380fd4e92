/**
 * The lookup tables of glibc's pow, derived from their definitions.
 *
 * glibc (since 2.28, the algorithm of Szabolcs Nagy / Arm's optimized-routines)
 * evaluates pow(x, y) as exp(y·log(x)) with two 128-entry tables. Rather than
 * pasting 640 opaque hex numbers, this module recomputes each entry from the rule
 * that defines it, in 192-bit fixed-point arithmetic, and the pow tests check the
 * result against CPython's `**` on glibc bit for bit.
 *
 * log table, entry i (z in the i-th of 128 equal subintervals of [OFF, 2·OFF)):
 *   invc     = 1/c, with c near the middle of the subinterval and 1/c of few bits:
 *              center < 1 ? round(N/center)/N : round(2N/center)/(2N)
 *   logc     = round(2^43 · log(c)) / 2^43
 *   logctail = log(c) - logc, rounded to float64
 * exp table, entry k (2^(k/N) ≈ H·(1 + T)):
 *   H = 2^(k/N) rounded to float64,   T = 2^(k/N)/H - 1 rounded to float64
 */
import { bitsToF64, f64ToBits } from "./bits.ts";
import { FORMATS, roundDyadic } from "./format.ts";

/** Fraction bits of the fixed-point arithmetic: far more than the ~70 bits the tables need. */
const P = 192;
const ONE = 1n << BigInt(P);

/** 2·atanh(num/den) in fixed point, for |num/den| well below 1: log((den+num)/(den-num)). */
function twoAtanh(num: bigint, den: bigint): bigint {
  if (num < 0n) return -twoAtanh(-num, den); // odd function; keeps the shifts below on non-negative values
  const z = (num << BigInt(P)) / den;
  const z2 = (z * z) >> BigInt(P);
  let power = z;
  let sum = 0n;
  for (let k = 1n; power !== 0n; k += 2n) {
    sum += power / k;
    power = (power * z2) >> BigInt(P);
  }
  return 2n * sum;
}

/** log(p/q) in fixed point, p/q in (1/2, 2]. */
function logRatio(p: bigint, q: bigint): bigint {
  return twoAtanh(p - q, p + q);
}

/** exp(x) in fixed point, |x| <= 1 (Taylor series). */
function expFixed(x: bigint): bigint {
  let term = ONE;
  let sum = ONE;
  for (let n = 1n; term !== 0n; n++) {
    term = (term * x) / (n << BigInt(P));
    sum += term;
  }
  return sum;
}

/** Round a fixed-point value (value/2^P) to the nearest float64. */
function fixedToF64(value: bigint): number {
  return roundDyadic({ mantissa: value, exponent: -P }, FORMATS.float64);
}

const LN2 = logRatio(2n, 1n);

export const POW_LOG_TABLE_BITS = 7;
export const EXP_TABLE_BITS = 7;
/** Bit pattern of the lower end of the log table's range, 0x1.69555p-1. */
export const POW_LOG_OFF = 0x3fe6955500000000n;

export interface PowLogEntry {
  readonly invc: number;
  readonly logc: number;
  readonly logctail: number;
}

function buildLogTable(): PowLogEntry[] {
  const n = 1 << POW_LOG_TABLE_BITS;
  const table: PowLogEntry[] = [];
  for (let i = 0; i < n; i++) {
    const lo = bitsToF64(POW_LOG_OFF + (BigInt(i) << BigInt(52 - POW_LOG_TABLE_BITS)));
    const hi = bitsToF64(POW_LOG_OFF + (BigInt(i + 1) << BigInt(52 - POW_LOG_TABLE_BITS)));
    const center = (lo + hi) / 2;
    // invc = j/N (or j/2N): a few bits only, so z·invc - 1 is exact in float64.
    const scale = center < 1 ? n : 2 * n;
    const j = Math.round(scale / center);
    const invc = j / scale;
    // log(c) = -log(invc) = log(scale/j)
    const logc = logRatio(BigInt(scale), BigInt(j));
    const shift = BigInt(P - 43);
    const logcRounded = ((logc + (1n << (shift - 1n))) >> shift) << shift; // round(2^43·log c)/2^43
    table.push({ invc, logc: fixedToF64(logcRounded), logctail: fixedToF64(logc - logcRounded) });
  }
  return table;
}

function buildExpTable(): bigint[] {
  const n = 1 << EXP_TABLE_BITS;
  const table: bigint[] = [];
  for (let k = 0; k < n; k++) {
    const exact = expFixed((LN2 * BigInt(k)) / BigInt(n)); // 2^(k/N)
    const h = fixedToF64(exact);
    // T = exact/H - 1, from the exact H = hm·2^he.
    const hBits = f64ToBits(h);
    const hMantissa = (hBits & ((1n << 52n) - 1n)) | (1n << 52n);
    const hExponent = Number(hBits >> 52n) - 1075;
    // exact/H - 1 = (exact - H)/H ; H in fixed point is hMantissa·2^(hExponent+P)
    const hFixed = hMantissa << BigInt(hExponent + P);
    const t = fixedToF64(((exact - hFixed) << BigInt(P)) / hFixed);
    table.push(f64ToBits(t), BigInt.asUintN(64, hBits - (BigInt(k) << BigInt(52 - EXP_TABLE_BITS))));
  }
  return table;
}

let logTable: PowLogEntry[] | undefined;
let expTable: bigint[] | undefined;

/** The 128 (invc, logc, logctail) entries of glibc's pow log table. */
export function powLogTable(): readonly PowLogEntry[] {
  logTable ??= buildLogTable();
  return logTable;
}

/** glibc's __exp_data.tab: 256 words, [2k] = bits of T[k], [2k+1] = bits of H[k] - (k << 45). */
export function expDataTable(): readonly bigint[] {
  expTable ??= buildExpTable();
  return expTable;
}
