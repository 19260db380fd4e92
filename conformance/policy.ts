/**
 * Tolerance policies: how far a port's values may be from torch's.
 *
 * Distances are in "ULPs at scale": |actual - expected| divided by the ULP of
 * the tensor's largest finite expected magnitude (at least the dtype's smallest
 * normal). A plain per-element ULP count would call 1e-30 vs 0 a billion ULPs
 * apart in an exp_avg whose other elements are near 1e-3, though no training
 * run can tell them apart. NaN matches only NaN, ±Inf only itself.
 *
 * - `exact`: bit-identical (SameValue; NaN = NaN) to the case's own recording.
 *   For ports that claim to reproduce PyTorch's CPU kernels.
 * - `default`: within the budgets below of torch 2.6's recording of the case
 *   under *any* of its legitimate configurations: the case's own, the other CPU
 *   profile, the other code path. So a correct port passes whichever profile and
 *   path its arithmetic resembles; the budgets absorb the rest (another libm's
 *   pow, FMA where torch had none). Measured (conformance/TOLERANCE.md): torch
 *   2.6's profiles differ by at most 1.5 (params), 170 (exp_avg), 2.5
 *   (exp_avg_sq) ULPs at scale on the corpus; the old torch 1.13 for-loop
 *   formula (mu applied twice in mu_product_next) is off by up to 17,140
 *   (float32), 245 (float16), 18 (bfloat16) on params.
 */
import { DTYPE, type DType } from "../spec/float/dtype.ts";

export type TensorKind = "param" | "exp_avg" | "exp_avg_sq" | "mu_product" | "step";

export interface TolerancePolicy {
  readonly name: "exact" | "default";
  readonly description: string;
  /** Accept torch's answer under the other profile / path too (computed by the oracle on the same inputs). */
  readonly acceptSiblings: boolean;
  /** Budget in ULPs at scale; 0 means SameValue. */
  budget(dtype: DType, kind: TensorKind): number;
}

export const EXACT: TolerancePolicy = {
  name: "exact",
  description: "bit-identical to torch 2.6 under the case's own CPU profile and code path (NaN = NaN)",
  acceptSiblings: false,
  budget: () => 0,
};

// Per dtype and tensor: 4x the largest distance between torch 2.6's own CPU
// profiles on the corpus, rounded up to a power of two (TOLERANCE.md).
const DEFAULT_BUDGETS: Readonly<Record<DType, Readonly<Record<TensorKind, number>>>> = {
  float64: { param: 4, exp_avg: 512, exp_avg_sq: 16, mu_product: 4, step: 0 },
  float32: { param: 8, exp_avg: 1024, exp_avg_sq: 8, mu_product: 4, step: 0 },
  float16: { param: 2, exp_avg: 8, exp_avg_sq: 16, mu_product: 4, step: 0 },
  bfloat16: { param: 2, exp_avg: 8, exp_avg_sq: 16, mu_product: 4, step: 0 },
};

export const DEFAULT: TolerancePolicy = {
  name: "default",
  description: "within a few ULPs (at the tensor's scale) of torch 2.6 under any of its CPU profiles and code paths",
  acceptSiblings: true,
  budget: (dtype, kind) => DEFAULT_BUDGETS[dtype][kind],
};

export const POLICIES: Readonly<Record<string, TolerancePolicy>> = { exact: EXACT, default: DEFAULT };


/** The largest distance, in ULPs at the expected tensor's scale, and where. */
export function scaledDistance(dtype: DType, expected: readonly number[], actual: readonly number[]): { distance: number; index: number } {
  if (expected.length !== actual.length) return { distance: Infinity, index: Math.min(expected.length, actual.length) };
  let scale = 0;
  for (const x of expected) if (Number.isFinite(x)) scale = Math.max(scale, Math.abs(x));
  const { precision, emin } = DTYPE[dtype].format;
  const unit = Math.max(scale, 2 ** emin) * 2 ** (1 - precision); // machine epsilon at the scale, never below the smallest normal
  let distance = 0;
  let index = -1;
  expected.forEach((x, i) => {
    const y = actual[i]!;
    let d: number;
    if (Number.isNaN(x) || Number.isNaN(y)) d = Number.isNaN(x) && Number.isNaN(y) ? 0 : Infinity;
    else if (!Number.isFinite(x) || !Number.isFinite(y)) d = x === y ? 0 : Infinity;
    else d = Math.abs(x - y) / unit;
    if (d > distance) {
      distance = d;
      index = i;
    }
  });
  return { distance, index };
}
