/**
 * NAdam's per-element update on typed arrays, for one param, in one pass.
 *
 * The math and its rounding order are spec/nadam/step.ts's (read it there);
 * this is the same sequence of PyTorch kernel roundings, fused into a single
 * loop because every element is independent. Each op below is one PyTorch
 * kernel: `r` rounds to the opmath type, `out` rounds the kernel's result to
 * the tensor dtype, `fma` is one rounding of x·y + z.
 */
import type { DType } from "../../../spec/float/dtype.ts";
import type { StepScalars } from "../../../spec/nadam/scalars.ts";
import type { NadamHyperParameters } from "../../../spec/nadam/step.ts";
import type { CodePath, RoundingProfile } from "../../../spec/nadam/types.ts";
import { fma32, fma64, roundBfloat16, roundHalf } from "./arith.ts";

// The rounding helpers branch on loop-invariant flags instead of being passed in
// as closures: the loop then has one monomorphic call site per helper, which V8
// inlines. (With closures, a loop that has seen two dtypes runs ~20x slower; with
// the dtype codes imported from another module instead of these local constants,
// ~20x slower too.)
const F64 = 0;
const F32 = 1;
const F16 = 2;
const BF16 = 3;
type Kind = typeof F64 | typeof F32 | typeof F16 | typeof BF16;

/** round to the opmath type: float64 for float64 tensors, float32 otherwise */
function r(x: number, kind: Kind): number {
  return kind === F64 ? x : Math.fround(x);
}

/** round an opmath result to the tensor dtype */
function out(x: number, kind: Kind): number {
  return kind === F16 ? roundHalf(x) : kind === BF16 ? roundBfloat16(x) : x;
}

function fma(x: number, y: number, z: number, kind: Kind): number {
  return kind === F64 ? fma64(x, y, z) : fma32(x, y, z);
}

// A complex param is stepped through its real view: its real dtype's kernel over twice the numbers.
const KINDS: Readonly<Record<DType, Kind>> = { float64: F64, float32: F32, float16: F16, bfloat16: BF16, complex64: F32, complex128: F64 };

export interface ElementKernelConfig {
  readonly dtype: DType;
  readonly profile: RoundingProfile;
  readonly path: CodePath;
  /** Elements [0, vectorBody) run PyTorch's vectorized main loop (16-bit add(alpha) depends on it). */
  readonly vectorBody: number;
}

/**
 * Update p, m (exp_avg), v (exp_avg_sq) in place from g, as PyTorch's kernels do
 * for this param's dtype, profile and path, with the step's host-side scalars
 * (spec/nadam/scalars.ts). Arrays hold opmath numbers (16-bit tensors are
 * decoded into Float32Arrays first).
 */
export function updateElements(
  p: Float64Array | Float32Array,
  g: Float64Array | Float32Array,
  m: Float64Array | Float32Array,
  v: Float64Array | Float32Array,
  h: NadamHyperParameters,
  s: StepScalars,
  config: ElementKernelConfig,
): void {
  const k = KINDS[config.dtype];
  const narrow = k === F16 || k === BF16;
  const fused = config.profile !== "default";
  const cuda = config.profile === "cuda"; // (spec/nadam/element-ops.ts: what CUDA's kernels do differently)
  const foreach = config.path === "foreach";
  const toDtype = (x: number): number => out(r(x, k), k); // a Python float turned into a 0-d tensor of the dtype

  // Scalars as each kernel receives them.
  const [beta1, beta2Float] = h.betas;
  const decayFactorIsForeachScalar = foreach && !h.lr_is_tensor && !cuda; // the CPU's _foreach_mul_(params, float) rounds it to a 16-bit dtype
  const decay = decayFactorIsForeachScalar && narrow ? toDtype(s.decayFactor) : r(s.decayFactor, k);
  const weightDecay = h.weight_decay;
  const alpha = narrow && !cuda ? toDtype(weightDecay) : r(weightDecay, k);
  const w = r(1 - beta1, k); // lerp weight
  const smallWeight = Math.abs(w) < 0.5;
  const wMinusOne = r(w - 1, k);
  const oneMinusW = r(1 - w, k);
  const beta2 = foreach && narrow && !cuda ? toDtype(beta2Float) : r(beta2Float, k);
  const oneMinusBeta2 = r(1 - beta2Float, k);
  const bc2 = r(s.biasCorrection2, k);
  const bc2Reciprocal = r(1 / s.biasCorrection2, k); // CUDA's Tensor.div by a float
  const bcSqrt = r(s.biasCorrection2Sqrt, k);
  const eps = narrow ? toDtype(h.eps) : r(h.eps, k);
  // The two step sizes, or the differentiable branch's scales (spec/nadam/scalars.ts).
  const step1 = r(s.gradStepSize, k);
  const step2 = r(s.expAvgStepSize, k);
  const differentiable = !foreach && h.differentiable === true;
  const maximize = h.maximize;
  const decoupled = h.decoupled_weight_decay;
  const n = p.length;

  for (let i = 0; i < n; i++) {
    let param = p[i]!;
    let grad = maximize ? -g[i]! : g[i]!;
    if (weightDecay !== 0) {
      if (decoupled) {
        param = out(r(param * decay, k), k);
      } else if (cuda) {
        grad = out(fma(param, alpha, grad, k), k);
      } else if (!narrow) {
        grad = fused ? fma(param, alpha, grad, k) : r(grad + r(alpha * param, k), k);
      } else {
        // 16-bit add(alpha): float32 fma in the vectorized body, dtype arithmetic elsewhere.
        grad = fused && i < config.vectorBody ? out(fma(param, alpha, grad, k), k) : out(r(grad + out(r(alpha * param, k), k), k), k);
      }
    }
    // exp_avg.lerp_(grad, 1 - beta1)
    let expAvg = m[i]!;
    const diff = r(grad - expAvg, k);
    if (smallWeight) expAvg = out(fused ? fma(w, diff, expAvg, k) : r(expAvg + r(w * diff, k), k), k);
    else expAvg = out(fused ? fma(wMinusOne, diff, grad, k) : r(grad - r(diff * oneMinusW, k), k), k);
    // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    let expAvgSq = out(r(v[i]! * beta2, k), k);
    if (cuda) {
      expAvgSq = out(fma(oneMinusBeta2, r(grad * grad, k), expAvgSq, k), k);
    } else {
      const scaled = r(oneMinusBeta2 * grad, k);
      expAvgSq = out(fused ? fma(scaled, grad, expAvgSq, k) : r(expAvgSq + r(scaled * grad, k), k), k);
    }
    // denominator
    let denom = foreach
      ? out(r(out(r(Math.sqrt(expAvgSq), k), k) / bcSqrt, k), k)
      : out(r(Math.sqrt(cuda ? out(r(expAvgSq * bc2Reciprocal, k), k) : out(r(expAvgSq / bc2, k), k)), k), k);
    denom = out(r(denom + eps, k), k);
    if (differentiable) {
      // grad * c1, exp_avg * c2 (new tensors), then addcdiv_ with value 1
      param = out(r(param + r(out(r(grad * step1, k), k) / denom, k), k), k);
      param = out(r(param + r(out(r(expAvg * step2, k), k) / denom, k), k), k);
    } else if (cuda) {
      // two addcdiv_, each an fma after the quotient
      param = out(fma(step1, r(grad / denom, k), param, k), k);
      param = out(fma(step2, r(expAvg / denom, k), param, k), k);
    } else {
      // two addcdiv_
      param = out(r(param + r(r(step1 * grad, k) / denom, k), k), k);
      param = out(r(param + r(r(step2 * expAvg, k) / denom, k), k), k);
    }
    p[i] = param;
    m[i] = expAvg;
    v[i] = expAvgSq;
  }
}
