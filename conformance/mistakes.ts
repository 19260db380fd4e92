/**
 * Known porting mistakes, each a single, deliberately wrong change to the
 * oracle, made on the case's own code path. When a port fails a case,
 * the diagnosis replays the case with every variant (and, failing an exact
 * match, pairs of them) and names the one the port follows (see diagnose() in
 * run.ts).
 */
import type { NadamHyperParameters, StepConfig } from "../spec/nadam/step.ts";
import { initialState, nadamStep } from "../spec/nadam/step.ts";
import type { Quirk } from "../spec/nadam/types.ts";
import type { Stepper } from "../golden/simulate.ts";
import { sloppyStepper } from "./sloppy.ts";

export type MistakeName =
  | "old-mu-product-next"
  | "exp-avg-mul-add-instead-of-lerp"
  | "weight-decay-mode-swapped"
  | "maximize-sign"
  | "bias-correction-off-by-one"
  | "step-counted-from-zero"
  | "eps-inside-sqrt"
  | "mu-product-in-float64"
  | "keras-optax-formula"
  | "paths-swapped"
  | "profiles-swapped";

/** A variant of the oracle: another stepper, configuration or reading of the options. */
export interface Variant {
  readonly stepper: Stepper;
  readonly config?: (config: StepConfig) => StepConfig;
  readonly hyper?: (hyper: NadamHyperParameters) => NadamHyperParameters;
}

export interface Mistake extends Variant {
  readonly name: MistakeName;
  readonly explanation: string;
}

/** The oracle with one of the spec's quirks (spec/nadam/types.ts) added. */
function withQuirk(quirk: Quirk): (config: StepConfig) => StepConfig {
  return (c) => ({ ...c, quirks: [...(c.quirks ?? []), quirk] });
}

export const MISTAKES: readonly Mistake[] = [
  {
    name: "old-mu-product-next",
    explanation: "mu_product_next = mu_product * mu * mu_next: torch <= 1.13's for-loop path applied mu twice (fixed in PyTorch PR #92699); use mu_product * mu_next, with mu_product already updated",
    stepper: nadamStep,
    config: withQuirk("mu-product-next-twice"),
  },
  {
    name: "exp-avg-mul-add-instead-of-lerp",
    explanation: "exp_avg = exp_avg * beta1 + (1 - beta1) * grad, a multiply then an add (torch <= 1.13's mul_ + add_): torch 2 updates it with exp_avg.lerp_(grad, 1 - beta1), one kernel that rounds once (with an fma on AVX2/AVX512)",
    stepper: nadamStep,
    config: withQuirk("exp-avg-mul-add"),
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
  {
    name: "profiles-swapped",
    explanation: "the rounding of PyTorch's other CPU profile: AVX2/AVX512 (`vectorized`) fuse the multiply-add of add(alpha), addcmul and lerp, NO AVX (`default`) rounds each operation; declare the profile your arithmetic follows",
    stepper: nadamStep,
    config: (c) => ({ ...c, profile: c.profile === "default" ? "vectorized" : "default" }),
  },
];

/** Two variants at once (a mistake on top of another, or of a legitimate sibling), or undefined when both replace the stepper. */
export function compose(a: Variant, b: Variant): Variant | undefined {
  if (a.stepper !== nadamStep && b.stepper !== nadamStep) return undefined;
  return {
    stepper: a.stepper !== nadamStep ? a.stepper : b.stepper,
    config: (c) => (b.config ? b.config(a.config ? a.config(c) : c) : a.config ? a.config(c) : c),
    hyper: (h) => (b.hyper ? b.hyper(a.hyper ? a.hyper(h) : h) : a.hyper ? a.hyper(h) : h),
  };
}

/** The mistakes a policy that accepts torch's other profiles and paths does not count as mistakes. */
export const SIBLING_MISTAKES: readonly MistakeName[] = ["paths-swapped", "profiles-swapped"];
