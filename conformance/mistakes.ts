/**
 * Known porting mistakes, each a deliberately wrong variant of the oracle. When
 * a port fails a case, the diagnosis replays the case with every variant and
 * names the one the port follows (see diagnose() in run.ts).
 */
import type { NadamHyperParameters, StepConfig } from "../spec/nadam/step.ts";
import { initialState, nadamStep } from "../spec/nadam/step.ts";
import type { Stepper } from "../golden/simulate.ts";
import { sloppyStepper } from "./sloppy.ts";

export interface Mistake {
  readonly name: string;
  readonly explanation: string;
  readonly stepper: Stepper;
  readonly config?: (config: StepConfig) => StepConfig;
  readonly hyper?: (hyper: NadamHyperParameters) => NadamHyperParameters;
}

export const MISTAKES: readonly Mistake[] = [
  {
    name: "old-mu-product-next",
    explanation: "mu_product_next = mu_product * mu * mu_next: torch <= 1.13's for-loop path applied mu twice (fixed in PyTorch PR #92699); use mu_product * mu_next, with mu_product already updated",
    stepper: nadamStep,
    config: (c) => ({ ...c, formula: "torch-1.13" }),
  },
  {
    name: "weight-decay-mode-swapped",
    explanation: "L2 weight decay applied as decoupled (param *= 1 - lr*wd), or decoupled applied as L2 (grad += wd*param): check decoupled_weight_decay",
    stepper: nadamStep,
    hyper: (h) => ({ ...h, decoupled_weight_decay: !h.decoupled_weight_decay }),
  },
  {
    name: "maximize-sign",
    explanation: "maximize handled with the wrong sign: PyTorch negates the grad (before weight decay) when maximize=True, and only then",
    stepper: nadamStep,
    hyper: (h) => ({ ...h, maximize: !h.maximize }),
  },
  {
    name: "bias-correction-off-by-one",
    explanation: "bias_correction2 = 1 - beta2 ** (step + 1): the bias correction must use the incremented step count t, 1 - beta2 ** t",
    stepper: sloppyStepper({ biasCorrectionOffset: 1 }),
  },
  {
    name: "step-counted-from-zero",
    explanation: "mu, mu_next and the bias correction use the step count before it is incremented: PyTorch does step += 1 first, so the first step is t = 1",
    stepper: sloppyStepper({ stepFromZero: true }),
  },
  {
    name: "eps-inside-sqrt",
    explanation: "denominator sqrt(v / bc2 + eps): PyTorch adds eps after the square root, sqrt(v / bc2) + eps",
    stepper: sloppyStepper({ epsInsideSqrt: true }),
  },
  {
    name: "mu-product-in-float64",
    explanation: "mu_product recomputed or accumulated in float64: PyTorch keeps it as a float32 0-d tensor (float64 only when the default dtype is float64) and rounds mu_product *= mu to float32 each step",
    // new states get a float64 mu_product; step keeps its dtype
    stepper: (params, states, hyper, config) =>
      nadamStep(params, states.map((s, i) => s ?? { ...initialState(params[i]!.dtype, params[i]!.data.length, config.scalarStateDtype), mu_product_dtype: "float64" }), hyper, config),
  },
  {
    name: "keras-optax-formula",
    explanation: "the Keras / optax Nadam formula (m bias-corrected with beta1 ** t, no momentum_decay schedule): PyTorch's NAdam uses mu_t = beta1 (1 - 0.5 * 0.96 ** (t * momentum_decay)) and the products of mu",
    stepper: sloppyStepper({ keras: true }),
  },
  {
    name: "paths-swapped",
    explanation: "the rounding of the other PyTorch code path: for-loop computes sqrt(v / bc2) + eps, foreach sqrt(v) / sqrt(bc2) + eps (bc2 ** 0.5 in float64); match the path the case asks for",
    stepper: nadamStep,
    config: (c) => ({ ...c, path: c.path === "forloop" ? "foreach" : "forloop" }),
  },
];
