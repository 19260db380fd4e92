/**
 * SameValue on a dtype's values: -0 differs from +0, NaN equals NaN whatever
 * its sign or payload (JavaScript numbers do not carry NaN payloads).
 */
import { elementBits } from "../spec/float/codec.ts";
import type { DType } from "../spec/float/dtype.ts";

export function sameValue(dtype: DType, a: number, b: number): boolean {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
  return elementBits(dtype, a) === elementBits(dtype, b);
}
