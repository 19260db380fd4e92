/**
 * One NAdam step over one param group: the oracle.
 *
 * The algorithm (Dozat 2016, "Incorporating Nesterov Momentum into Adam", as
 * PyTorch implements it in torch/optim/nadam.py, torch 2.1 – 2.6 and later).
 * For each param θ with gradient g, at its own step count t (1-based):
 *
 *     g       ← -g                                   if maximize
 *     θ       ← θ·(1 - γλ)                           if λ ≠ 0 and decoupled_weight_decay
 *     g       ← g + λθ                               if λ ≠ 0 otherwise (L2)
 *     μ_t     = β1·(1 - ½·0.96^(tψ))
 *     μ_{t+1} = β1·(1 - ½·0.96^((t+1)ψ))
 *     Π_t     = Π_{t-1}·μ_t                          state `mu_product`, Π_0 = 1
 *     m       ← lerp(m, g, 1 - β1)                   state `exp_avg`
 *     v       ← β2·v + (1 - β2)·g²                   state `exp_avg_sq`
 *     d       = sqrt(v / (1 - β2^t)) + ε             for-loop path
 *             = sqrt(v) / sqrt(1 - β2^t) + ε         foreach path (rounds differently)
 *     θ       ← θ - γ(1 - μ_t)/(1 - Π_t) · g/d       first addcdiv
 *     θ       ← θ - γ·μ_{t+1}/(1 - Π_t·μ_{t+1}) · m/d second addcdiv
 *
 * γ = lr, λ = weight_decay, ψ = momentum_decay, ε = eps. There is no β1^t bias
 * correction: the 1 - Π terms play that role.
 *
 * Rounding, which is what makes this an oracle and not a formula:
 * - every tensor op rounds to the param dtype, through its opmath type
 *   (element-ops.ts), fused or not according to the rounding profile;
 * - μ_t, μ_{t+1}, 1 - β2^t and the step sizes are Python float64 scalars
 *   (scalars.ts), computed with glibc's pow, and rounded to the kernel's opmath
 *   type only where they enter a tensor op;
 * - `step` and `mu_product` are 0-d tensors (float32, or float64 when torch's
 *   default dtype is float64), so `step += 1` and `mu_product *= mu_t` round to
 *   that dtype, whatever the param dtype;
 * - a 0-d float32 tensor lr turns the for-loop step sizes into float32 tensor
 *   arithmetic; the foreach path reads it back with `.item()` instead;
 * - a group with `differentiable=True` takes another for-loop branch, whose step
 *   sizes are 0-d tensors in mu_product's dtype: c = (-γ·(1 - μ_t)) / (1 - Π_t)
 *   computed as `reciprocal(1 - Π_t) * float` (Python's float / tensor), with
 *   Π_t·μ_{t+1} a tensor product; g and m are scaled by them, then added with
 *   addcdiv(value=1). The foreach path refuses it ("_foreach ops don't support
 *   autograd").
 *
 * Differs from: optax/Keras `nadam` (bias-corrected m̂ with β1^t, no μ schedule);
 * torch ≤ 1.13's for-loop path, which used Π_t·μ_t·μ_{t+1} in the second step size
 * (formula "torch-1.13" here, for history; fixed in PyTorch PR #92699) and updated
 * m with mul + add instead of lerp.
 */
import type { DType } from "../float/dtype.ts";
import { elementOps, inVectorBody, type ElementOps } from "./element-ops.ts";
import { stepScalars, type StepScalars } from "./scalars.ts";
import { FORMULA_QUIRKS, type CodePath, type Formula, type Quirk, type RoundingProfile } from "./types.ts";

export interface NadamHyperParameters {
  /** A Python float, or the value of a 0-d float32 tensor when `lr_is_tensor`. */
  readonly lr: number;
  readonly lr_is_tensor: boolean;
  readonly betas: readonly [number, number];
  readonly eps: number;
  readonly weight_decay: number;
  readonly momentum_decay: number;
  readonly decoupled_weight_decay: boolean;
  readonly maximize: boolean;
  /** The group's `differentiable` flag (default false): another branch, another rounding. */
  readonly differentiable?: boolean;
}

/** What PyTorch keeps in `optimizer.state[p]`, values as numbers of their dtype. */
export interface NadamParamState {
  readonly step: number;
  readonly step_dtype: DType;
  readonly mu_product: number;
  readonly mu_product_dtype: DType;
  readonly exp_avg: readonly number[];
  readonly exp_avg_sq: readonly number[];
}

export interface SpecParam {
  readonly dtype: DType;
  /** The values; a complex param's as its real view: (real, imaginary) pairs. */
  readonly data: readonly number[];
  /** null: the param has no grad this step, and PyTorch skips it entirely. */
  readonly grad: readonly number[] | null;
}

export interface StepConfig {
  readonly path: CodePath;
  readonly profile: RoundingProfile;
  /** Default "torch-2". */
  readonly formula?: Formula;
  /** Departures from the formula, one change each (types.ts): how a known porting mistake is modelled. */
  readonly quirks?: readonly Quirk[];
  /** dtype of new `step` / `mu_product` tensors: torch's default dtype rule. Default "float32". */
  readonly scalarStateDtype?: "float32" | "float64";
}

export interface StepResult {
  readonly data: number[][];
  readonly state: (NadamParamState | undefined)[];
}

/** A param being updated: its own mutable copies, like PyTorch's in-place tensors. */
interface Slot {
  readonly ops: ElementOps;
  /** Per element: computed by the vectorized main loop (matters for 16-bit add(alpha)). */
  readonly inBody: readonly boolean[];
  data: number[];
  grad: number[];
  step: number;
  readonly stepDtype: DType;
  muProduct: number;
  readonly muProductDtype: DType;
  expAvg: number[];
  expAvgSq: number[];
}

/** Lazy state initialisation: step 0, mu_product 1, zero moments. */
export function initialState(dtype: DType, numel: number, scalarStateDtype: "float32" | "float64" = "float32"): NadamParamState {
  return {
    step: 0,
    step_dtype: scalarStateDtype,
    mu_product: 1,
    mu_product_dtype: scalarStateDtype,
    exp_avg: new Array<number>(numel).fill(0),
    exp_avg_sq: new Array<number>(numel).fill(0),
  };
}

/**
 * One `optimizer.step()` for one param group. Pure: returns new param values
 * and new state; params whose grad is null keep their data and state.
 */
export function nadamStep(
  params: readonly SpecParam[],
  state: readonly (NadamParamState | undefined)[],
  hyper: NadamHyperParameters,
  config: StepConfig,
): StepResult {
  const slots: (Slot | null)[] = params.map((param, i) => {
    if (param.grad === null) return null;
    if (param.grad.length !== param.data.length) {
      throw new RangeError(`param ${i}: grad has ${param.grad.length} elements, param has ${param.data.length}`);
    }
    const s = state[i] ?? initialState(param.dtype, param.data.length, config.scalarStateDtype);
    return {
      ops: elementOps(param.dtype, config.profile),
      inBody: param.data.map((_, k) => inVectorBody(k, param.data.length, param.dtype)),
      data: [...param.data],
      grad: [...param.grad],
      step: s.step,
      stepDtype: s.step_dtype,
      muProduct: s.mu_product,
      muProductDtype: s.mu_product_dtype,
      expAvg: [...s.exp_avg],
      expAvgSq: [...s.exp_avg_sq],
    };
  });
  const active = slots.filter((s): s is Slot => s !== null);
  const quirks = new Set<Quirk>([...FORMULA_QUIRKS[config.formula ?? "torch-2"][config.path], ...(config.quirks ?? [])]);
  if (config.path === "forloop") for (const slot of active) singleTensor(slot, hyper, quirks);
  else multiTensor(active, hyper, quirks);

  return {
    data: slots.map((slot, i) => (slot === null ? [...params[i]!.data] : slot.data)),
    state: slots.map((slot, i) => {
      if (slot === null) return state[i];
      return {
        step: slot.step,
        step_dtype: slot.stepDtype,
        mu_product: slot.muProduct,
        mu_product_dtype: slot.muProductDtype,
        exp_avg: slot.expAvg,
        exp_avg_sq: slot.expAvgSq,
      };
    }),
  };
}

// ---------------------------------------------------------------------------
// The phases of a step. Both paths run the same phases; they differ in order
// (param by param, or phase by phase over the whole list) and where PyTorch's
// two implementations really differ: the denominator and a tensor lr.

function negateGrad(s: Slot): void {
  s.grad = s.grad.map(s.ops.neg);
}

/**
 * `step += 1`, `mu_product *= mu_t` and the step's host-side scalars
 * (scalars.ts). PyTorch interleaves them with the tensor ops below; none of
 * them reads a tensor's values, so the order does not change a bit.
 */
function advance(s: Slot, h: NadamHyperParameters, path: CodePath, quirks: ReadonlySet<Quirk>): StepScalars {
  const scalars = stepScalars(h, path, { step: s.step, step_dtype: s.stepDtype, mu_product: s.muProduct, mu_product_dtype: s.muProductDtype }, quirks);
  s.step = scalars.step;
  s.muProduct = scalars.muProduct;
  return scalars;
}

function applyWeightDecay(s: Slot, h: NadamHyperParameters, path: CodePath, decayFactor: number): void {
  if (h.weight_decay === 0) return; // Python's `if weight_decay != 0`
  if (h.decoupled_weight_decay) {
    // param.mul_(1 - lr * weight_decay); the foreach path's _foreach_mul_ takes a float lr as a scalar
    const mul = path === "foreach" && !h.lr_is_tensor ? s.ops.foreachMul : s.ops.mul;
    s.data = s.data.map((x) => mul(x, decayFactor));
  } else {
    s.grad = s.grad.map((g, i) => s.ops.addAlpha(g, s.data[i]!, h.weight_decay, s.inBody[i]!));
  }
}

/** exp_avg.lerp_(grad, 1 - beta1); torch 1.13: exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1). */
function updateExpAvg(s: Slot, beta1: number, quirks: ReadonlySet<Quirk>, path: CodePath): void {
  if (quirks.has("exp-avg-mul-add")) {
    const mul = path === "foreach" ? s.ops.foreachMul : s.ops.mul;
    s.expAvg = s.expAvg.map((m, i) => s.ops.addAlpha(mul(m, beta1), s.grad[i]!, 1 - beta1, s.inBody[i]!));
  } else {
    s.expAvg = s.expAvg.map((m, i) => s.ops.lerp(m, s.grad[i]!, 1 - beta1));
  }
}

/** exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2) */
function updateExpAvgSq(s: Slot, beta2: number, path: CodePath): void {
  const mul = path === "foreach" ? s.ops.foreachMul : s.ops.mul;
  s.expAvgSq = s.expAvgSq.map((v, i) => s.ops.addcmul(mul(v, beta2), s.grad[i]!, s.grad[i]!, 1 - beta2));
}

/** for-loop denominator: exp_avg_sq.div(bias_correction2).sqrt().add_(eps) */
function denomForloop(s: Slot, bc2: number, eps: number): number[] {
  return s.expAvgSq.map((v) => s.ops.add(s.ops.sqrt(s.ops.div(v, bc2)), eps));
}

/** foreach denominator: sqrt(exp_avg_sq) / bias_correction2 ** 0.5 + eps */
function denomForeach(s: Slot, bcSqrt: number, eps: number): number[] {
  return s.expAvgSq.map((v) => s.ops.add(s.ops.foreachDiv(s.ops.sqrt(v), bcSqrt), eps));
}

/** param.addcdiv_(grad, denom, value=grad step size); param.addcdiv_(exp_avg, denom, value=exp_avg step size) */
function applyUpdate(s: Slot, denom: readonly number[], gradStepSize: number, expAvgStepSize: number): void {
  s.data = s.data.map((x, i) => s.ops.addcdiv(x, s.grad[i]!, denom[i]!, gradStepSize));
  s.data = s.data.map((x, i) => s.ops.addcdiv(x, s.expAvg[i]!, denom[i]!, expAvgStepSize));
}

/**
 * The differentiable branch's update (torch 2.1+): grad and exp_avg multiplied
 * by 0-d scale tensors (new tensors), then param.addcdiv_(grad, denom) and
 * param.addcdiv_(exp_avg, denom) with value 1.
 */
function applyDifferentiableUpdate(s: Slot, denom: readonly number[], gradScale: number, expAvgScale: number): void {
  const grad = s.grad.map((g) => s.ops.mul(g, gradScale));
  const expAvg = s.expAvg.map((m) => s.ops.mul(m, expAvgScale));
  s.data = s.data.map((x, i) => s.ops.addcdiv(x, grad[i]!, denom[i]!, 1));
  s.data = s.data.map((x, i) => s.ops.addcdiv(x, expAvg[i]!, denom[i]!, 1));
}

/** _single_tensor_nadam, for one param. */
function singleTensor(s: Slot, h: NadamHyperParameters, quirks: ReadonlySet<Quirk>): void {
  const [beta1, beta2] = h.betas;
  if (h.maximize) negateGrad(s);
  const scalars = advance(s, h, "forloop", quirks);
  applyWeightDecay(s, h, "forloop", scalars.decayFactor);
  updateExpAvg(s, beta1, quirks, "forloop");
  updateExpAvgSq(s, beta2, "forloop");
  const denom = denomForloop(s, scalars.biasCorrection2, h.eps);
  if (h.differentiable) applyDifferentiableUpdate(s, denom, scalars.gradStepSize, scalars.expAvgStepSize);
  else applyUpdate(s, denom, scalars.gradStepSize, scalars.expAvgStepSize);
}

/** _multi_tensor_nadam, over every param of the group that has a grad. */
function multiTensor(slots: readonly Slot[], h: NadamHyperParameters, quirks: ReadonlySet<Quirk>): void {
  if (h.differentiable) throw new Error("_foreach ops don't support autograd"); // PyTorch's assert
  const [beta1, beta2] = h.betas;
  if (h.maximize) slots.forEach(negateGrad);
  const scalars = slots.map((s) => advance(s, h, "foreach", quirks));
  slots.forEach((s, i) => applyWeightDecay(s, h, "foreach", scalars[i]!.decayFactor));
  slots.forEach((s) => updateExpAvg(s, beta1, quirks, "foreach"));
  slots.forEach((s) => updateExpAvgSq(s, beta2, "foreach"));
  const denoms = slots.map((s, i) => denomForeach(s, scalars[i]!.biasCorrection2Sqrt, h.eps));
  slots.forEach((s, i) => applyUpdate(s, denoms[i]!, scalars[i]!.gradStepSize, scalars[i]!.expAvgStepSize));
}
