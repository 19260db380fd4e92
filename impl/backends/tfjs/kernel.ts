/**
 * NAdam's per-element update as TensorFlow.js ops, float32, in PyTorch's op
 * order (spec/nadam/step.ts; the same sequence as typed-array/kernels.ts for a
 * float32 param). Each PyTorch kernel becomes one or two tfjs ops that each
 * round once to float32; measured (README, "TensorFlow.js"): tfjs's cpu, wasm
 * and webgpu (lavapipe) float32 add, sub, mul, div and sqrt are correctly
 * rounded, so the `default` profile (no fused multiply-add) is PyTorch's bits.
 * The `vectorized` profile's three fused multiply-adds take an `fma` from
 * fma.ts (a custom kernel per tfjs backend).
 *
 * Nothing here reads a value back to the host: the scalars come from
 * spec/nadam/scalars.ts (computed from the host mirrors of `step` and
 * `mu_product`), and every op stays on the tfjs backend. The functions are
 * pure (new tensors out, inputs untouched), so `tf.grad` can differentiate
 * through them and callers decide what to dispose (they run inside tf.tidy).
 */
import type * as TF from "@tensorflow/tfjs-core";
import type { StepScalars } from "../../../spec/nadam/scalars.ts";
import type { NadamHyperParameters } from "../../../spec/nadam/step.ts";
import type { CodePath } from "../../../spec/nadam/types.ts";

export type Tfjs = typeof TF;


/** x·y + z rounded once to float32 (the vectorized profile), or null for the unfused `default` profile. */
export type Fma = ((x: TF.Tensor, y: TF.Tensor, z: TF.Tensor) => TF.Tensor) | null;

/** One param's tensors going into a step: all float32, the same shape (a scalar operand may be 0-d). */
export interface Moments {
  readonly param: TF.Tensor;
  readonly expAvg: TF.Tensor;
  readonly expAvgSq: TF.Tensor;
}

/**
 * The update of one param (or of a whole group's params concatenated, when
 * they share their scalars): returns the new param, exp_avg and exp_avg_sq.
 * `path` picks the denominator (and the differentiable branch, for-loop only).
 */
export function nadamUpdate(tf: Tfjs, m: Moments, gradIn: TF.Tensor, h: NadamHyperParameters, s: StepScalars, path: CodePath, fma: Fma): Moments {
  const f = Math.fround;
  const scalar = (x: number): TF.Tensor => tf.scalar(f(x), "float32");
  const [beta1, beta2] = h.betas;
  let param = m.param;
  let grad = h.maximize ? tf.neg(gradIn) : gradIn;
  if (h.weight_decay !== 0) {
    if (h.decoupled_weight_decay) {
      param = tf.mul(param, scalar(s.decayFactor)); // param.mul_(1 - lr * weight_decay)
    } else {
      const alpha = scalar(h.weight_decay); // grad.add(param, alpha=weight_decay)
      grad = fma ? fma(param, alpha, grad) : tf.add(grad, tf.mul(alpha, param));
    }
  }
  // exp_avg.lerp_(grad, 1 - beta1): PyTorch's two forms, by |weight| < 0.5
  const w = f(1 - beta1);
  const diff = tf.sub(grad, m.expAvg);
  let expAvg: TF.Tensor;
  if (Math.abs(w) < 0.5) expAvg = fma ? fma(scalar(w), diff, m.expAvg) : tf.add(m.expAvg, tf.mul(scalar(w), diff));
  else expAvg = fma ? fma(scalar(w - 1), diff, grad) : tf.sub(grad, tf.mul(diff, scalar(1 - w)));
  // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
  const decayed = tf.mul(m.expAvgSq, scalar(beta2));
  const scaled = tf.mul(scalar(1 - beta2), grad);
  const expAvgSq = fma ? fma(scaled, grad, decayed) : tf.add(decayed, tf.mul(scaled, grad));
  // for-loop: exp_avg_sq.div(bias_correction2).sqrt() + eps; foreach: sqrt(exp_avg_sq) / bias_correction2 ** 0.5 + eps
  const root = path === "foreach" ? tf.div(tf.sqrt(expAvgSq), scalar(s.biasCorrection2Sqrt)) : tf.sqrt(tf.div(expAvgSq, scalar(s.biasCorrection2)));
  const denom = tf.add(root, scalar(h.eps));
  if (path === "forloop" && h.differentiable === true) {
    // grad * c1 and exp_avg * c2 as new tensors, then addcdiv_ with value 1
    param = tf.add(param, tf.div(tf.mul(grad, scalar(s.gradStepSize)), denom));
    param = tf.add(param, tf.div(tf.mul(expAvg, scalar(s.expAvgStepSize)), denom));
  } else {
    // param.addcdiv_(grad, denom, value=step size): value times grad first, then the division
    param = tf.add(param, tf.div(tf.mul(scalar(s.gradStepSize), grad), denom));
    param = tf.add(param, tf.div(tf.mul(scalar(s.expAvgStepSize), expAvg), denom));
  }
  return { param, expAvg, expAvgSq };
}

/** One param of a group step, as the group functions take it. */
export interface ParamStep extends Moments {
  readonly grad: TF.Tensor;
  readonly scalars: StepScalars;
}

function sameScalars(a: StepScalars, b: StepScalars): boolean {
  return (Object.keys(a) as (keyof StepScalars)[]).every((k) => Object.is(a[k], b[k]));
}

/**
 * The foreach path over a group. With `flatten` (tfjs ops where a kernel
 * launch is dear: webgpu, CUDA; update.ts decides), params whose scalars are equal (the usual
 * case: one step count for the whole group) are flattened into one tensor and
 * updated by one sequence of ops, so a group costs the same ~20 launches
 * however many params it has (plus a concat per operand and a split per
 * result). Without it, each param gets its own ops: on cpu and wasm a launch
 * is a function call, and wasm's Slice kernel (which tf.split runs) copies its
 * whole input out of the wasm heap for every piece, O(params × elements).
 * Element-wise ops do not care how elements are laid out, so the bits are
 * those of PyTorch's per-tensor _foreach ops either way.
 */
export function nadamForeach(tf: Tfjs, steps: readonly ParamStep[], h: NadamHyperParameters, update: (m: Moments, grad: TF.Tensor, h: NadamHyperParameters, s: StepScalars, path: CodePath) => Moments, flatten: boolean): Moments[] {
  if (!flatten) return steps.map((s) => update(s, s.grad, h, s.scalars, "foreach"));
  const results: (Moments | undefined)[] = steps.map(() => undefined);
  const pending = steps.map((_, i) => i);
  while (pending.length > 0) {
    const first = steps[pending[0]!]!;
    // (an empty param runs alone: tf.split mishandles a piece of size 0)
    const batch = first.param.size === 0 ? [pending[0]!] : pending.filter((i) => steps[i]!.param.size > 0 && sameScalars(steps[i]!.scalars, first.scalars));
    for (const i of batch) pending.splice(pending.indexOf(i), 1);
    if (batch.length === 1) {
      results[batch[0]!] = update(first, first.grad, h, first.scalars, "foreach");
      continue;
    }
    const flat = (pick: (s: ParamStep) => TF.Tensor) => tf.concat(batch.map((i) => tf.reshape(pick(steps[i]!), [-1])));
    const out = update({ param: flat((s) => s.param), expAvg: flat((s) => s.expAvg), expAvgSq: flat((s) => s.expAvgSq) }, flat((s) => s.grad), h, first.scalars, "foreach");
    const sizes = batch.map((i) => steps[i]!.param.size);
    const unflat = (t: TF.Tensor) => tf.split(t, sizes).map((piece, k) => tf.reshape(piece, steps[batch[k]!]!.param.shape));
    const [params, expAvgs, expAvgSqs] = [unflat(out.param), unflat(out.expAvg), unflat(out.expAvgSq)];
    batch.forEach((i, k) => (results[i] = { param: params[k]!, expAvg: expAvgs[k]!, expAvgSq: expAvgSqs[k]! }));
  }
  return results as Moments[];
}
