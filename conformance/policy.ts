/**
 * Tolerance policies: how far a port's values may be from torch's.
 *
 * Distances are in "ULPs at scale": |actual - expected| divided by the ULP of
 * the scale of what the update rounded — the largest finite magnitude in the
 * tensor's expected values this step and the step before (its own operand:
 * param += update, exp_avg = lerp(exp_avg, grad), ...), at least the dtype's
 * smallest normal. A plain per-element ULP count would call 1e-30 vs 0 a
 * billion ULPs apart in an exp_avg whose other elements are near 1e-3, and a
 * scale from this step alone calls one rounding of a cancelling 0-d update
 * (0.005 - 0.00495) a thousand ULPs, though no training run can tell either
 * apart. NaN matches only NaN, ±Inf only itself.
 *
 * - `exact`: bit-identical (SameValue; NaN = NaN) to the case's own recording.
 *   For ports that claim to reproduce PyTorch's CPU kernels.
 * - `default`: within the budgets below of torch 2.6's recording of the case
 *   under *any* of its legitimate configurations: the case's own, the other CPU
 *   profile, the other code path. So a correct port passes whichever profile and
 *   path its arithmetic resembles; the budgets absorb the rest (another libm's
 *   pow, FMA where torch had none). Measured (conformance/TOLERANCE.md): torch
 *   2.6's profiles differ by at most 1.5 (params), 12 (exp_avg), 2.5
 *   (exp_avg_sq) ULPs at scale on the corpus; the old torch 1.13 formula is off
 *   by up to 16,800 (float32 params), 44 (float16 params), 17 (bfloat16 exp_avg).
 */
import { DTYPE, type DType } from "../spec/float/dtype.ts";

export type TensorKind = "param" | "exp_avg" | "exp_avg_sq" | "mu_product" | "step";

/**
 * Where a case's expected trajectory comes from: torch's recording (`golden`:
 * the port steps on the recorded grads), or the oracle's closed-loop run (the
 * port's grads come from its own params, so its differences compound).
 */
export type CaseSource = "golden" | "closed-loop";

export interface TolerancePolicy {
  readonly name: "exact" | "default";
  readonly description: string;
  /** Accept torch's answer under the other profile / path too (computed by the oracle on the same inputs). */
  readonly acceptSiblings: boolean;
  /** Budget in ULPs at scale; 0 means SameValue. */
  budget(dtype: DType, kind: TensorKind, source: CaseSource): number;
}

export const EXACT: TolerancePolicy = {
  name: "exact",
  description: "bit-identical to torch's recording under the case's own rounding profile and code path (NaN = NaN)",
  acceptSiblings: false,
  budget: () => 0,
};

// Per source, dtype and tensor: 4x the largest distance between torch 2.6's own
// CPU profiles on the suite's cases of that source, rounded up to a power of
// two, at least 4 (TOLERANCE.md; conformance/measure.ts's budgetFrom, and
// policy.test.ts checks them against it). Closed-loop runs exist in float32 and
// float64; there, exp_avg follows grads that drift with the params.
export const DEFAULT_BUDGETS: Readonly<Record<CaseSource, Readonly<Partial<Record<DType, Readonly<Record<TensorKind, number>>>>>>> = {
  golden: {
    float64: { param: 4, exp_avg: 64, exp_avg_sq: 16, mu_product: 4, step: 0 },
    float32: { param: 8, exp_avg: 32, exp_avg_sq: 8, mu_product: 4, step: 0 },
    float16: { param: 4, exp_avg: 8, exp_avg_sq: 16, mu_product: 4, step: 0 },
    bfloat16: { param: 4, exp_avg: 8, exp_avg_sq: 16, mu_product: 4, step: 0 },
    complex64: { param: 4, exp_avg: 16, exp_avg_sq: 8, mu_product: 4, step: 0 },
    complex128: { param: 4, exp_avg: 8, exp_avg_sq: 8, mu_product: 4, step: 0 },
  },
  "closed-loop": {
    float64: { param: 4, exp_avg: 2048, exp_avg_sq: 8, mu_product: 4, step: 0 },
    float32: { param: 8, exp_avg: 2048, exp_avg_sq: 16, mu_product: 4, step: 0 },
  },
};

export const DEFAULT: TolerancePolicy = {
  name: "default",
  description: "within a few ULPs (at the tensor's scale) of torch under any of its rounding profiles and code paths",
  acceptSiblings: true,
  budget: (dtype, kind, source) => {
    const budget = DEFAULT_BUDGETS[source][dtype]?.[kind];
    if (budget === undefined) throw new Error(`the default policy has no measured budget for ${dtype} ${kind} in ${source} cases`);
    return budget;
  },
};

export const POLICIES: Readonly<Record<string, TolerancePolicy>> = { exact: EXACT, default: DEFAULT };


/**
 * The largest distance, in ULPs at scale, and where: the scale is the largest
 * finite magnitude among the expected values and `previous`, the same tensor's
 * expected values one step earlier (absent on the first step).
 */
export function scaledDistance(dtype: DType, expected: readonly number[], actual: readonly number[], previous: readonly number[] = []): { distance: number; index: number } {
  if (expected.length !== actual.length) return { distance: Infinity, index: Math.min(expected.length, actual.length) };
  let scale = 0;
  for (const x of expected) if (Number.isFinite(x)) scale = Math.max(scale, Math.abs(x));
  for (const x of previous) if (Number.isFinite(x)) scale = Math.max(scale, Math.abs(x));
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
