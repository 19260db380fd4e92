/**
 * NAdam's per-element update on typed arrays, for one param, in one pass.
 *
 * The math and its rounding order are spec/nadam/step.ts's (read it there);
 * this is the same sequence of PyTorch kernel roundings, fused into a single
 * loop because every element is independent. Each op below is one PyTorch
 * kernel: `r` rounds to the opmath type, `out` rounds the kernel's result to
 * the tensor dtype, `fma` is one rounding of x·y + z.
 */
import type { CodePath, DType, RoundingProfile } from "../../spec/nadam/types.ts";
import { roundingOf } from "./arith.ts";

/** Host-side values of one param's step (Python float64 scalars, already computed). */
export interface ElementScalars {
  readonly maximize: boolean;
  readonly weightDecay: number;
  readonly decoupled: boolean;
  /** 1 - lr·weight_decay (float64, or the float32 tensor value for a tensor lr) */
  readonly decayFactor: number;
  /** the decoupled factor multiplies as `_foreach_mul_(params, float)` (rounded to a 16-bit dtype) */
  readonly decayFactorForeachScalar: boolean;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  /** 1 - beta2 ** step */
  readonly biasCorrection2: number;
  /** (1 - beta2 ** step) ** 0.5, foreach path only */
  readonly biasCorrection2Sqrt: number;
  readonly gradStepSize: number;
  readonly expAvgStepSize: number;
  /**
   * The differentiable branch: grad and exp_avg are first multiplied by these 0-d
   * tensors' values (in place of the step sizes), then added with addcdiv(value=1).
   */
  readonly differentiable: boolean;
  readonly gradScale: number;
  readonly expAvgScale: number;
}

export interface ElementKernelConfig {
  readonly dtype: DType;
  readonly profile: RoundingProfile;
  readonly path: CodePath;
  /** Elements [0, vectorBody) run PyTorch's vectorized main loop (16-bit add(alpha) depends on it). */
  readonly vectorBody: number;
}

/**
 * Update p, m (exp_avg), v (exp_avg_sq) in place from g, as PyTorch's kernels do
 * for this param's dtype, profile and path. Arrays hold opmath numbers (the
 * 16-bit backends decode into Float32Arrays first).
 */
export function updateElements(
  p: Float64Array | Float32Array,
  g: Float64Array | Float32Array,
  m: Float64Array | Float32Array,
  v: Float64Array | Float32Array,
  s: ElementScalars,
  config: ElementKernelConfig,
): void {
  const { r, out, fma, narrow } = roundingOf(config.dtype);
  const fused = config.profile === "vectorized";
  const foreach = config.path === "foreach";
  const toDtype = (x: number): number => out(r(x)); // a Python float turned into a 0-d tensor of the dtype

  // Scalars as each kernel receives them.
  const decay = s.decayFactorForeachScalar && narrow ? toDtype(s.decayFactor) : r(s.decayFactor);
  const alpha = narrow ? toDtype(s.weightDecay) : r(s.weightDecay);
  const w = r(1 - s.beta1); // lerp weight
  const smallWeight = Math.abs(w) < 0.5;
  const wMinusOne = r(w - 1);
  const oneMinusW = r(1 - w);
  const beta2 = foreach && narrow ? toDtype(s.beta2) : r(s.beta2);
  const oneMinusBeta2 = r(1 - s.beta2);
  const bc2 = r(s.biasCorrection2);
  const bcSqrt = r(s.biasCorrection2Sqrt);
  const eps = narrow ? toDtype(s.eps) : r(s.eps);
  const step1 = r(s.gradStepSize);
  const step2 = r(s.expAvgStepSize);
  const gradScale = r(s.gradScale);
  const expAvgScale = r(s.expAvgScale);
  const n = p.length;

  for (let i = 0; i < n; i++) {
    let param = p[i]!;
    let grad = s.maximize ? -g[i]! : g[i]!;
    if (s.weightDecay !== 0) {
      if (s.decoupled) {
        param = out(r(param * decay));
      } else if (!narrow) {
        grad = fused ? fma(param, alpha, grad) : r(grad + r(alpha * param));
      } else {
        // 16-bit add(alpha): float32 fma in the vectorized body, dtype arithmetic elsewhere.
        grad = fused && i < config.vectorBody ? out(fma(param, alpha, grad)) : out(r(grad + out(r(alpha * param))));
      }
    }
    // exp_avg.lerp_(grad, 1 - beta1)
    let expAvg = m[i]!;
    const diff = r(grad - expAvg);
    if (smallWeight) expAvg = out(fused ? fma(w, diff, expAvg) : r(expAvg + r(w * diff)));
    else expAvg = out(fused ? fma(wMinusOne, diff, grad) : r(grad - r(diff * oneMinusW)));
    // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    let expAvgSq = out(r(v[i]! * beta2));
    const scaled = r(oneMinusBeta2 * grad);
    expAvgSq = out(fused ? fma(scaled, grad, expAvgSq) : r(expAvgSq + r(scaled * grad)));
    // denominator
    let denom = foreach ? out(r(out(r(Math.sqrt(expAvgSq))) / bcSqrt)) : out(r(Math.sqrt(out(r(expAvgSq / bc2)))));
    denom = out(r(denom + eps));
    if (s.differentiable) {
      // grad * c1, exp_avg * c2 (new tensors), then addcdiv_ with value 1
      param = out(r(param + r(out(r(grad * gradScale)) / denom)));
      param = out(r(param + r(out(r(expAvg * expAvgScale)) / denom)));
    } else {
      // two addcdiv_
      param = out(r(param + r(r(step1 * grad) / denom)));
      param = out(r(param + r(r(step2 * expAvg) / denom)));
    }
    p[i] = param;
    m[i] = expAvg;
    v[i] = expAvgSq;
  }
}
