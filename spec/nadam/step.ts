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
import { elementOps, inVectorBody, type ElementOps, type VectorWidth } from "./element-ops.ts";
import { biasCorrection2, mu, muNext, pyPow, stepSizes, tensorLrStepSizes } from "./scalars.ts";
import type { CodePath, DType, Formula, RoundingProfile } from "./types.ts";

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
  readonly data: readonly number[];
  /** null: the param has no grad this step, and PyTorch skips it entirely. */
  readonly grad: readonly number[] | null;
}

export interface StepConfig {
  readonly path: CodePath;
  readonly profile: RoundingProfile;
  /** Default "torch-2". */
  readonly formula?: Formula;
  /** dtype of new `step` / `mu_product` tensors: torch's default dtype rule. Default "float32". */
  readonly scalarStateDtype?: "float32" | "float64";
  /** Vector register width of the vectorized profile (AVX2: 256, AVX512: 512). Default 256. */
  readonly vectorWidth?: VectorWidth;
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
  readonly stepOps: ElementOps;
  muProduct: number;
  readonly muProductOps: ElementOps;
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
    const width = config.vectorWidth ?? 256;
    return {
      ops: elementOps(param.dtype, config.profile),
      inBody: param.data.map((_, k) => inVectorBody(k, param.data.length, param.dtype, width)),
      data: [...param.data],
      grad: [...param.grad],
      step: s.step,
      stepOps: elementOps(s.step_dtype, config.profile),
      muProduct: s.mu_product,
      muProductOps: elementOps(s.mu_product_dtype, config.profile),
      expAvg: [...s.exp_avg],
      expAvgSq: [...s.exp_avg_sq],
    };
  });
  const active = slots.filter((s): s is Slot => s !== null);
  const formula = config.formula ?? "torch-2";
  if (config.path === "forloop") for (const slot of active) singleTensor(slot, hyper, formula);
  else multiTensor(active, hyper, formula);

  return {
    data: slots.map((slot, i) => (slot === null ? [...params[i]!.data] : slot.data)),
    state: slots.map((slot, i) => {
      if (slot === null) return state[i];
      return {
        step: slot.step,
        step_dtype: slot.stepOps.dtype,
        mu_product: slot.muProduct,
        mu_product_dtype: slot.muProductOps.dtype,
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

function incrementStep(s: Slot): void {
  s.step = s.stepOps.add(s.step, 1);
}

/** θ·(1 - γλ): float64 for a float lr; float32 tensor arithmetic for a tensor lr. */
function decoupledDecayFactor(h: NadamHyperParameters): number {
  if (!h.lr_is_tensor) return 1 - h.lr * h.weight_decay;
  const f = Math.fround;
  return f(1 - f(h.lr * f(h.weight_decay)));
}

function applyWeightDecay(s: Slot, h: NadamHyperParameters, path: CodePath): void {
  if (h.weight_decay === 0) return; // Python's `if weight_decay != 0`
  if (h.decoupled_weight_decay) {
    const factor = decoupledDecayFactor(h);
    const mul = path === "foreach" && !h.lr_is_tensor ? s.ops.foreachMul : s.ops.mul;
    s.data = s.data.map((x) => mul(x, factor));
  } else {
    s.grad = s.grad.map((g, i) => s.ops.addAlpha(g, s.data[i]!, h.weight_decay, s.inBody[i]!));
  }
}

function updateMuProduct(s: Slot, muT: number, path: CodePath): void {
  s.muProduct = path === "foreach" ? s.muProductOps.foreachMul(s.muProduct, muT) : s.muProductOps.mul(s.muProduct, muT);
}

/** exp_avg.lerp_(grad, 1 - beta1); torch 1.13: exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1). */
function updateExpAvg(s: Slot, beta1: number, formula: Formula, path: CodePath): void {
  if (formula === "torch-1.13") {
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

/** foreach denominator: sqrt(exp_avg_sq) / bias_correction2 ** 0.5 + eps (math.sqrt in torch 1.13) */
function denomForeach(s: Slot, bc2: number, eps: number, formula: Formula): number[] {
  const bcSqrt = formula === "torch-1.13" ? Math.sqrt(bc2) : pyPow(bc2, 0.5);
  return s.expAvgSq.map((v) => s.ops.add(s.ops.div(s.ops.sqrt(v), bcSqrt), eps));
}

function applyUpdate(s: Slot, denom: readonly number[], gradStepSize: number, expAvgStepSize: number): void {
  s.data = s.data.map((x, i) => s.ops.addcdiv(x, s.grad[i]!, denom[i]!, gradStepSize));
  s.data = s.data.map((x, i) => s.ops.addcdiv(x, s.expAvg[i]!, denom[i]!, expAvgStepSize));
}

/** mu_product · mu_{t+1}: a float64 product in torch 2; torch 1.13's for-loop multiplied mu in twice. */
function muProductNext(s: Slot, muT: number, muNextT: number, formula: Formula): number {
  if (formula === "torch-1.13") return s.muProductOps.mul(s.muProductOps.mul(s.muProduct, muT), muNextT);
  return s.muProduct * muNextT;
}

/** _single_tensor_nadam, for one param. */
function singleTensor(s: Slot, h: NadamHyperParameters, formula: Formula): void {
  const [beta1, beta2] = h.betas;
  if (h.maximize) negateGrad(s);
  incrementStep(s);
  const t = s.step;
  const bc2 = biasCorrection2(beta2, t);
  applyWeightDecay(s, h, "forloop");
  const muT = mu(beta1, h.momentum_decay, t);
  const muNextT = muNext(beta1, h.momentum_decay, t);
  updateMuProduct(s, muT, "forloop");
  updateExpAvg(s, beta1, formula, "forloop");
  updateExpAvgSq(s, beta2, "forloop");
  const denom = denomForloop(s, bc2, h.eps);
  if (h.differentiable) {
    applyDifferentiableUpdate(s, denom, h, muT, muNextT);
    return;
  }
  const next = muProductNext(s, muT, muNextT, formula);
  const sizes = h.lr_is_tensor
    ? tensorLrStepSizes(h.lr, muT, muNextT, s.muProduct, next)
    : stepSizes(h.lr, muT, muNextT, s.muProduct, next);
  applyUpdate(s, denom, sizes[0], sizes[1]);
}

/**
 * The differentiable branch's update (torch 2.1+):
 *   mu_product_next = mu_product * mu_next                       0-d tensor
 *   grad    = grad    * (-lr * (1 - mu) / (1 - mu_product))       float / tensor = reciprocal(tensor) * float
 *   exp_avg = exp_avg * (-lr * mu_next / (1 - mu_product_next))
 *   param.addcdiv_(grad, denom); param.addcdiv_(exp_avg, denom)
 * With a tensor lr, (-lr * x) is a float32 tensor and the division a tensor division.
 */
function applyDifferentiableUpdate(s: Slot, denom: readonly number[], h: NadamHyperParameters, muT: number, muNextT: number): void {
  const mp = s.muProductOps;
  const next = mp.mul(s.muProduct, muNextT);
  const scale = (numerator: number, product: number): number => {
    if (!h.lr_is_tensor) return mp.mul(mp.reciprocal(mp.rsub(1.0, product)), -h.lr * numerator);
    const f = Math.fround;
    return f(f(-h.lr * f(numerator)) / mp.rsub(1.0, product));
  };
  const gradScale = scale(1.0 - muT, s.muProduct);
  const expAvgScale = scale(muNextT, next);
  const grad = s.grad.map((g) => s.ops.mul(g, gradScale));
  const expAvg = s.expAvg.map((m) => s.ops.mul(m, expAvgScale));
  s.data = s.data.map((x, i) => s.ops.addcdiv(x, grad[i]!, denom[i]!, 1));
  s.data = s.data.map((x, i) => s.ops.addcdiv(x, expAvg[i]!, denom[i]!, 1));
}

/** _multi_tensor_nadam, over every param of the group that has a grad. */
function multiTensor(slots: readonly Slot[], h: NadamHyperParameters, formula: Formula): void {
  if (h.differentiable) throw new Error("_foreach ops don't support autograd"); // PyTorch's assert
  const [beta1, beta2] = h.betas;
  if (h.maximize) slots.forEach(negateGrad);
  slots.forEach(incrementStep);
  slots.forEach((s) => applyWeightDecay(s, h, "foreach"));
  slots.forEach((s) => updateExpAvg(s, beta1, formula, "foreach"));
  slots.forEach((s) => updateExpAvgSq(s, beta2, "foreach"));
  const mus = slots.map((s) => mu(beta1, h.momentum_decay, s.step));
  const muNexts = slots.map((s) => muNext(beta1, h.momentum_decay, s.step));
  slots.forEach((s, i) => updateMuProduct(s, mus[i]!, "foreach"));
  const denoms = slots.map((s) => denomForeach(s, biasCorrection2(beta2, s.step), h.eps, formula));
  // `.item()` of a tensor lr: float64 step sizes from the float32 value.
  slots.forEach((s, i) => {
    const sizes = stepSizes(h.lr, mus[i]!, muNexts[i]!, s.muProduct, s.muProduct * muNexts[i]!);
    applyUpdate(s, denoms[i]!, sizes[0], sizes[1]);
  });
}
