/**
 * The host-side scalars of one NAdam step: Python float64 arithmetic, evaluated
 * in exactly the order CPython evaluates torch/optim/nadam.py, with glibc's pow.
 */
import { glibcPow } from "../float/pow.ts";

/** Python's `a ** b` for floats on glibc x86-64. */
export const pyPow = glibcPow;

/** bias_correction2 = 1 - beta2 ** step */
export function biasCorrection2(beta2: number, step: number): number {
  return 1 - pyPow(beta2, step);
}

/** mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay)) */
export function mu(beta1: number, momentumDecay: number, step: number): number {
  return beta1 * (1.0 - 0.5 * pyPow(0.96, step * momentumDecay));
}

/** mu_{t+1} = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay)); note (t+1)·ψ, not t·ψ + ψ. */
export function muNext(beta1: number, momentumDecay: number, step: number): number {
  return beta1 * (1.0 - 0.5 * pyPow(0.96, (step + 1) * momentumDecay));
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
  return [(-lr * (1.0 - muT)) / (1.0 - muProduct), (-lr * muNextT) / (1.0 - muProductNext)];
}

/**
 * Step sizes when lr is a 0-d float32 tensor, on the for-loop path: the
 * expressions become float32 tensor arithmetic (each op rounded to float32,
 * Python floats rounded to float32 as they meet the tensor).
 */
export function tensorLrStepSizes(lr32: number, muT: number, muNextT: number, muProduct: number, muProductNext: number): [number, number] {
  const f = Math.fround;
  const negLr = -lr32;
  return [f(f(negLr * f(1.0 - muT)) / f(1.0 - muProduct)), f(f(negLr * f(muNextT)) / f(1.0 - muProductNext))];
}
