/**
 * Distance in units in the last place, in a dtype: how many representable
 * values lie between two numbers (0 for equal values, -0 and +0 included;
 * NaN is at distance 0 from NaN and infinitely far from anything else).
 */
import { elementBits } from "../spec/float/codec.ts";
import type { DType } from "../spec/nadam/types.ts";

const WIDTH: Readonly<Record<DType, bigint>> = { float64: 64n, float32: 32n, float16: 16n, bfloat16: 16n };

/** The bit pattern as an integer whose order is the numbers' order. */
function ordered(dtype: DType, x: number): bigint {
  const bits = elementBits(dtype, x);
  const sign = 1n << (WIDTH[dtype] - 1n);
  return bits & sign ? -(bits & (sign - 1n)) : bits;
}

export function ulpDistance(dtype: DType, a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b) ? 0 : Infinity;
  if (a === b) return 0; // also +0 / -0
  const d = ordered(dtype, a) - ordered(dtype, b);
  return Number(d < 0n ? -d : d);
}
