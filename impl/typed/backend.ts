/**
 * The typed-array backend: NAdam on Float64Array / Float32Array / Uint16Array
 * storage, bit-exact to PyTorch's CPU kernels under a chosen rounding profile.
 *
 * Host side per param (Python float64 in PyTorch, see spec/nadam/scalars.ts):
 *   step += 1;  mu_t, mu_{t+1}, 1 - beta2^t from glibc's pow;
 *   mu_product *= mu_t (a 0-d tensor op in mu_product's dtype);
 *   the two step sizes (float32 tensor arithmetic for a tensor lr on the for-loop path).
 * Then one pass over the elements (kernels.ts).
 */
import { glibcPow } from "../../spec/float/pow.ts";
import { DTYPES, type RoundingProfile } from "../../spec/nadam/types.ts";
import type { GroupHyperParameters, GroupStep, NadamBackend, NadamState } from "../backend.ts";
import { roundingOf } from "./arith.ts";
import { updateElements, type ElementScalars } from "./kernels.ts";
import type { Tensor } from "./tensor.ts";

export interface TypedArrayBackendOptions {
  /** PyTorch's CPU rounding profile to reproduce. Default "vectorized" (AVX2/AVX512 machines). */
  readonly profile?: RoundingProfile;
  /** Vector register width of the vectorized profile: 256 (AVX2, default) or 512 (AVX512). */
  readonly vectorWidth?: 256 | 512;
}

const f = Math.fround;

/** `step += 1` and `mu_product *= mu` on 0-d tensors of their own dtypes. */
function advanceScalars(state: NadamState, beta1: number, momentumDecay: number, foreach: boolean): { t: number; mu: number; muNext: number } {
  state.step.set(0, state.step.get(0) + 1);
  const t = state.step.get(0);
  const mu = beta1 * (1.0 - 0.5 * glibcPow(0.96, t * momentumDecay));
  const muNext = beta1 * (1.0 - 0.5 * glibcPow(0.96, (t + 1) * momentumDecay));
  const { r, out, narrow } = roundingOf(state.mu_product.dtype);
  // _foreach_mul_ rounds its scalar to a 16-bit dtype; Tensor.mul_ keeps it in opmath.
  const factor = foreach && narrow ? out(r(mu)) : r(mu);
  state.mu_product.set(0, out(r(state.mu_product.get(0) * factor)));
  return { t, mu, muNext };
}

function stepSizes(h: GroupHyperParameters, foreach: boolean, mu: number, muNext: number, muProduct: number): [number, number] {
  const muProductNext = muProduct * muNext;
  if (h.lrIsTensor && !foreach) {
    // (-lr * (1 - mu)) / (1 - mu_product) with lr a float32 tensor: float32 tensor ops.
    return [f(f(-h.lr * f(1.0 - mu)) / f(1.0 - muProduct)), f(f(-h.lr * f(muNext)) / f(1.0 - muProductNext))];
  }
  return [(-h.lr * (1.0 - mu)) / (1.0 - muProduct), (-h.lr * muNext) / (1.0 - muProductNext)];
}

/**
 * The differentiable branch's scale tensors, 0-d in mu_product's dtype:
 * (-lr·x) / (1 - p) as Python computes `float / tensor`, reciprocal(1 - p) · float;
 * with a tensor lr, (-lr·x) is a float32 tensor and the division a true one.
 */
function differentiableScales(h: GroupHyperParameters, state: NadamState, mu: number, muNext: number): [number, number] {
  const { r, out } = roundingOf(state.mu_product.dtype);
  const muProduct = state.mu_product.get(0);
  const oneMinus = (x: number): number => out(r(1 - x));
  const times = (a: number, s: number): number => out(r(a * r(s)));
  const scale = (numerator: number, product: number): number =>
    h.lrIsTensor ? f(f(-h.lr * f(numerator)) / oneMinus(product)) : times(out(r(1 / oneMinus(product))), -h.lr * numerator);
  return [scale(1.0 - mu, muProduct), scale(muNext, times(muProduct, muNext))];
}

function decayFactor(h: GroupHyperParameters): number {
  return h.lrIsTensor ? f(1 - f(h.lr * f(h.weight_decay))) : 1 - h.lr * h.weight_decay;
}

/** Opmath working copies of a tensor's values: the storage itself for float32/float64. */
function workingValues(t: Tensor): Float64Array | Float32Array {
  if (t.data instanceof Float64Array || t.data instanceof Float32Array) return t.data;
  const values = new Float32Array(t.numel);
  for (let i = 0; i < values.length; i++) values[i] = t.get(i);
  return values;
}

function storeBack(t: Tensor, values: Float64Array | Float32Array): void {
  if (values === t.data) return;
  for (let i = 0; i < values.length; i++) t.set(i, values[i]!);
}

export function typedArrayBackend(options: TypedArrayBackendOptions = {}): NadamBackend {
  const profile = options.profile ?? "vectorized";
  const width = options.vectorWidth ?? 256;
  return {
    name: `typed-array (${profile})`,
    device: "cpu",
    dtypes: DTYPES,
    profile,
    stepGroup({ params, grads, states, hyper, path }: GroupStep): void {
      const foreach = path === "foreach";
      params.forEach((param, i) => {
        const grad = grads[i]!;
        const state = states[i]!;
        if (grad.numel !== param.numel || grad.dtype !== param.dtype) {
          throw new RangeError(`grad (${grad.dtype} [${grad.shape}]) does not match its param (${param.dtype} [${param.shape}])`);
        }
        const { t, mu, muNext } = advanceScalars(state, hyper.beta1, hyper.momentum_decay, foreach);
        const biasCorrection2 = 1 - glibcPow(hyper.beta2, t);
        const [gradStepSize, expAvgStepSize] = stepSizes(hyper, foreach, mu, muNext, state.mu_product.get(0));
        const [gradScale, expAvgScale] = hyper.differentiable ? differentiableScales(hyper, state, mu, muNext) : [0, 0];
        const scalars: ElementScalars = {
          maximize: hyper.maximize,
          weightDecay: hyper.weight_decay,
          decoupled: hyper.decoupled_weight_decay,
          decayFactor: decayFactor(hyper),
          decayFactorForeachScalar: foreach && !hyper.lrIsTensor,
          beta1: hyper.beta1,
          beta2: hyper.beta2,
          eps: hyper.eps,
          biasCorrection2,
          biasCorrection2Sqrt: glibcPow(biasCorrection2, 0.5),
          gradStepSize,
          expAvgStepSize,
          differentiable: hyper.differentiable,
          gradScale,
          expAvgScale,
        };
        const bytes = param.dtype === "float64" ? 8 : param.dtype === "float32" ? 4 : 2;
        const block = (2 * width) / 8 / bytes; // elements per iteration of PyTorch's vectorized loop
        const p = workingValues(param);
        const m = workingValues(state.exp_avg);
        const v = workingValues(state.exp_avg_sq);
        const g = workingValues(grad);
        updateElements(p, g, m, v, scalars, { dtype: param.dtype, profile, path, vectorBody: param.numel - (param.numel % block) });
        storeBack(param, p);
        storeBack(state.exp_avg, m);
        storeBack(state.exp_avg_sq, v);
      });
    },
  };
}
