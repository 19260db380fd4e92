/**
 * The host side of a NAdam step: Python float64 arithmetic, evaluated in exactly
 * the order CPython evaluates torch/optim/nadam.py, with glibc's pow, and the
 * 0-d tensor ops on `step` and `mu_product`. None of it reads a param, grad or
 * moment, so `stepScalars` computes all of it at once, for the oracle and for
 * every backend: backends restate only the per-element kernel.
 */
import type { DType } from "../float/dtype.ts";
import { GLIBC_POW_IO, glibcPow, glibcPowInPlace } from "../float/pow.ts";
import { elementOps, type ElementOps } from "./element-ops.ts";
import type { NadamHyperParameters } from "./step.ts";
import type { CodePath, Quirk } from "./types.ts";

/** Python's `a ** b` for floats on glibc x86-64. */
export const pyPow = glibcPow;

/**
 * stepScalarsInto's pows take their numbers through GLIBC_POW_IO ([0] x and
 * [1] y in, [2] x ** y out), not as arguments and results: a number passed to,
 * or returned from, a call the engine does not inline is boxed, an allocation
 * each, every step. The formulas around the pows are small functions, which it
 * always inlines.
 */
const POW_IO = GLIBC_POW_IO;

/** bias_correction2 = 1 - beta2 ** step */
export function biasCorrection2(beta2: number, step: number): number {
  return biasCorrection2Of(pyPow(beta2, step));
}
function biasCorrection2Of(power: number): number {
  return 1 - power;
}

/**
 * POW_IO[2] = 0.96 ** POW_IO[1], remembering the last two exponents and powers
 * ([e, power, e, power]): a step's mu_{t+1} is the next step's mu_t, the same pow.
 */
const POW96 = new Float64Array([NaN, NaN, NaN, NaN]);
function pow96InPlace(): void {
  const io = POW_IO;
  const e = io[1]!;
  if (POW96[0] === e) {
    io[2] = POW96[1]!;
    return;
  }
  if (POW96[2] === e) {
    io[2] = POW96[3]!;
    return;
  }
  io[0] = 0.96;
  glibcPowInPlace();
  POW96[2] = POW96[0]!;
  POW96[3] = POW96[1]!;
  POW96[0] = e;
  POW96[1] = io[2]!;
}
function pow96(e: number): number {
  POW_IO[1] = e;
  pow96InPlace();
  return POW_IO[2]!;
}

/** mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay)) */
export function mu(beta1: number, momentumDecay: number, step: number): number {
  return muOf(beta1, pow96(step * momentumDecay));
}

/** mu_{t+1} = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay)); note (t+1)·ψ, not t·ψ + ψ. */
export function muNext(beta1: number, momentumDecay: number, step: number): number {
  return muOf(beta1, pow96((step + 1) * momentumDecay));
}

/** beta1 * (1 - 0.5 * power), power = 0.96 ** (t·ψ) for mu_t, 0.96 ** ((t+1)·ψ) for mu_{t+1}. */
function muOf(beta1: number, power: number): number {
  return beta1 * (1.0 - 0.5 * power);
}

/**
 * The two float64 step sizes of a step, for a float lr:
 *   grad term     -lr·(1 - mu_t) / (1 - mu_product)
 *   exp_avg term  -lr·mu_{t+1} / (1 - mu_product·mu_{t+1})
 * The for-loop path writes `(-lr * (1 - mu)) / (1 - mp)`, the foreach path
 * `(lr * (1 - mu) / (1 - mp)) * -1`: negation is exact, so both are the same bits.
 * `muProductNext` is mu_product·mu_{t+1} as the formula computes it (float64 in
 * torch 2; a float32 tensor product in torch 1.13's for-loop path).
 */
export function stepSizes(lr: number, muT: number, muNextT: number, muProduct: number, muProductNext: number): [number, number] {
  return [gradStepSize(lr, muT, muProduct), expAvgStepSize(lr, muNextT, muProductNext)];
}

// stepSizes and tensorLrStepSizes one number at a time, for stepScalarsInto: a tuple per step would be an allocation per step.
function gradStepSize(lr: number, muT: number, muProduct: number): number {
  return (-lr * (1.0 - muT)) / (1.0 - muProduct);
}
function expAvgStepSize(lr: number, muNextT: number, muProductNext: number): number {
  return (-lr * muNextT) / (1.0 - muProductNext);
}
function tensorLrGradStepSize(lr32: number, muT: number, muProduct: number): number {
  const f = Math.fround;
  return f(f(-lr32 * f(1.0 - muT)) / f(1.0 - muProduct));
}
function tensorLrExpAvgStepSize(lr32: number, muNextT: number, muProductNext: number): number {
  const f = Math.fround;
  return f(f(-lr32 * f(muNextT)) / f(1.0 - muProductNext));
}

/**
 * Step sizes when lr is a 0-d float32 tensor, on the for-loop path: the
 * expressions become float32 tensor arithmetic (each op rounded to float32,
 * Python floats rounded to float32 as they meet the tensor).
 */
export function tensorLrStepSizes(lr32: number, muT: number, muNextT: number, muProduct: number, muProductNext: number): [number, number] {
  return [tensorLrGradStepSize(lr32, muT, muProduct), tensorLrExpAvgStepSize(lr32, muNextT, muProductNext)];
}

/** θ·(1 - γλ): float64 for a float lr; float32 tensor arithmetic for a tensor lr. */
export function decoupledDecayFactor(h: NadamHyperParameters): number {
  if (!h.lr_is_tensor) return 1 - h.lr * h.weight_decay;
  const f = Math.fround;
  return f(1 - f(h.lr * f(h.weight_decay)));
}

/**
 * The differentiable branch's scales (torch 2.1+), 0-d tensors in mu_product's dtype:
 *   grad    *= -lr * (1 - mu) / (1 - mu_product)        float / tensor = reciprocal(tensor) * float
 *   exp_avg *= -lr * mu_next / (1 - mu_product * mu_next)
 * With a tensor lr, (-lr * x) is a float32 tensor and the division a tensor division.
 */
function differentiableScales(h: NadamHyperParameters, mp: ElementOps, muT: number, muNextT: number, muProduct: number): [number, number] {
  const next = mp.mul(muProduct, muNextT);
  const scale = (numerator: number, product: number): number => {
    if (!h.lr_is_tensor) return mp.mul(mp.reciprocal(mp.rsub(1.0, product)), -h.lr * numerator);
    const f = Math.fround;
    return f(f(-h.lr * f(numerator)) / mp.rsub(1.0, product));
  };
  return [scale(1.0 - muT, muProduct), scale(muNextT, next)];
}

// 0-d ops on step and mu_product (add, mul, rsub, reciprocal) never fuse, so
// the rounding profile does not matter for them.
const SCALAR_OPS = new Map<DType, ElementOps>();
function scalarOps(dtype: DType): ElementOps {
  let ops = SCALAR_OPS.get(dtype);
  if (ops === undefined) SCALAR_OPS.set(dtype, (ops = elementOps(dtype, "default")));
  return ops;
}

/** A param's `step` and `mu_product` before the step, with their tensors' dtypes. */
export interface ScalarState {
  readonly step: number;
  readonly step_dtype: DType;
  readonly mu_product: number;
  readonly mu_product_dtype: DType;
}

/** Everything the element kernels of one param's step take from the host. */
export interface StepScalars {
  /** `step += 1`, rounded to step's dtype. */
  readonly step: number;
  /** `mu_product *= mu_t`, rounded to mu_product's dtype. */
  readonly muProduct: number;
  readonly mu: number;
  readonly muNext: number;
  /** 1 - beta2 ** step: the for-loop denominator's divisor. */
  readonly biasCorrection2: number;
  /** bias_correction2 ** 0.5 (math.sqrt in torch 1.13): the foreach denominator's divisor. */
  readonly biasCorrection2Sqrt: number;
  /** 1 - lr·weight_decay, the decoupled decay factor. */
  readonly decayFactor: number;
  /**
   * What the grad and exp_avg terms are multiplied by: the step sizes of the two
   * addcdiv_ calls, or, in the differentiable branch, the values of the 0-d scale
   * tensors that grad and exp_avg are multiplied by before addcdiv_(value=1).
   */
  readonly gradStepSize: number;
  readonly expAvgStepSize: number;
}

const NO_QUIRKS: ReadonlySet<Quirk> = new Set();

/** StepScalars whose fields `stepScalarsInto` writes. */
export type WritableStepScalars = { -readonly [K in keyof StepScalars]: StepScalars[K] };

/** A WritableStepScalars to write into (every field a number, so that its shape never changes). */
export function newStepScalars(): WritableStepScalars {
  return { step: 0, muProduct: 0, mu: 0, muNext: 0, biasCorrection2: 0, biasCorrection2Sqrt: 0, decayFactor: 0, gradStepSize: 0, expAvgStepSize: 0 };
}

/**
 * One param's host-side scalars for a step on `path`, from its state before the
 * step; `quirks` (types.ts) changes `mu-product-next-twice` and
 * `bias-correction-math-sqrt` here.
 */
export function stepScalars(h: NadamHyperParameters, path: CodePath, before: ScalarState, quirks: ReadonlySet<Quirk> = NO_QUIRKS): StepScalars {
  return stepScalarsInto(newStepScalars(), h, path, before, quirks);
}

/** stepScalars written into `out` (returned): a caller that steps often keeps one rather than allocating one per step. */
export function stepScalarsInto(out: WritableStepScalars, h: NadamHyperParameters, path: CodePath, before: ScalarState, quirks: ReadonlySet<Quirk> = NO_QUIRKS): WritableStepScalars {
  const beta1 = h.betas[0];
  const beta2 = h.betas[1];
  const mp = scalarOps(before.mu_product_dtype);
  const step = scalarOps(before.step_dtype).add(before.step, 1);
  const io = POW_IO;
  io[1] = step * h.momentum_decay;
  pow96InPlace();
  const muT = muOf(beta1, io[2]!);
  io[1] = (step + 1) * h.momentum_decay;
  pow96InPlace();
  const muNextT = muOf(beta1, io[2]!);
  // Tensor.mul_ keeps the float in opmath; _foreach_mul_ rounds it to a 16-bit dtype first.
  const muProduct = path === "foreach" ? mp.foreachMul(before.mu_product, muT) : mp.mul(before.mu_product, muT);
  io[0] = beta2;
  io[1] = step;
  glibcPowInPlace();
  const bc2 = biasCorrection2Of(io[2]!);
  // mu_product·mu_{t+1}: a float64 product; torch 1.13's for-loop multiplied 0-d tensors, mu twice.
  const next = quirks.has("mu-product-next-twice") ? mp.mul(mp.mul(muProduct, muT), muNextT) : muProduct * muNextT;
  let gradSize: number;
  let expAvgSize: number;
  if (path === "forloop" && h.differentiable) {
    [gradSize, expAvgSize] = differentiableScales(h, mp, muT, muNextT, muProduct);
  } else if (path === "forloop" && h.lr_is_tensor) {
    gradSize = tensorLrGradStepSize(h.lr, muT, muProduct);
    expAvgSize = tensorLrExpAvgStepSize(h.lr, muNextT, next);
  } else {
    // (foreach: `.item()` of a tensor lr, float64 step sizes from the float32 value)
    gradSize = gradStepSize(h.lr, muT, muProduct);
    expAvgSize = expAvgStepSize(h.lr, muNextT, next);
  }
  out.step = step;
  out.muProduct = muProduct;
  out.mu = muT;
  out.muNext = muNextT;
  out.biasCorrection2 = bc2;
  if (quirks.has("bias-correction-math-sqrt")) {
    out.biasCorrection2Sqrt = Math.sqrt(bc2);
  } else {
    io[0] = bc2;
    io[1] = 0.5;
    glibcPowInPlace();
    out.biasCorrection2Sqrt = io[2]!;
  }
  out.decayFactor = decoupledDecayFactor(h);
  out.gradStepSize = gradSize;
  out.expAvgStepSize = expAvgSize;
  return out;
}

/** A key equal for two scalar states exactly when stepScalars gives them the same scalars (-0 kept apart from 0). */
export function scalarStateKey(before: ScalarState): string {
  return `${before.step}|${before.step_dtype}|${Object.is(before.mu_product, -0) ? "-0" : before.mu_product}|${before.mu_product_dtype}`;
}

/**
 * stepScalars for one group's step, computed once per distinct scalar state:
 * the params of a group almost always share their step count and mu_product,
 * and each computation costs four glibc pows.
 */
export function groupStepScalars(h: NadamHyperParameters, path: CodePath, quirks: ReadonlySet<Quirk> = NO_QUIRKS): (before: ScalarState) => StepScalars {
  const seen = new Map<string, StepScalars>();
  return (before) => {
    const key = scalarStateKey(before);
    let scalars = seen.get(key);
    if (scalars === undefined) seen.set(key, (scalars = stepScalars(h, path, before, quirks)));
    return scalars;
  };
}
