/**
 * The closed vocabularies of the spec: rounding profiles, code paths, formulas
 * and optional features (the dtypes are spec/float/dtype.ts's).
 */

/**
 * How PyTorch's elementwise kernels round (see ../shared/reference/torch-cpu-rounding.md
 * for the CPU):
 * - `default`: the CPU kernels PyTorch runs with ATEN_CPU_CAPABILITY=default (no AVX):
 *   every multiply and add rounded separately;
 * - `vectorized`: the AVX2 / AVX512 CPU kernels, whose add(alpha=), addcmul and lerp
 *   use fused multiply-add. This is what a normal x86-64 machine runs;
 * - `cuda`: the CUDA kernels that NAdam without `capturable` runs, measured on an H100
 *   with torch 2.11 (golden/cuda); element-ops.ts says how they round.
 */
export type RoundingProfile = "default" | "vectorized" | "cuda";
export const ROUNDING_PROFILES: readonly RoundingProfile[] = ["default", "vectorized", "cuda"];
/** The CPU's profiles: what a CPU backend can claim. */
export const CPU_ROUNDING_PROFILES: readonly RoundingProfile[] = ["default", "vectorized"];

/**
 * PyTorch's two NAdam code paths: `forloop` is `_single_tensor_nadam`
 * (foreach=False, the default on CPU), `foreach` is `_multi_tensor_nadam`.
 */
export type CodePath = "forloop" | "foreach";
export const CODE_PATHS: readonly CodePath[] = ["forloop", "foreach"];

/**
 * Which PyTorch's formula to follow. `torch-2` is every release since 2.1 (the
 * spec's default); `torch-1.13` is the old one (history, and the ports that
 * copied it): its quirks below, per path.
 */
export type Formula = "torch-2" | "torch-1.13";

/**
 * Single departures from torch 2's NAdam, each one change, so that a port that
 * makes one can be told which (the suite's known mistakes build on them):
 * - `mu-product-next-twice`: the exp_avg step size divides by
 *   1 - mu_product·mu_t·mu_{t+1}, mu applied twice (torch 1.13's for-loop
 *   path; fixed in PyTorch PR #92699);
 * - `exp-avg-mul-add`: exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1), two
 *   roundings, instead of lerp_ (torch 1.13, both paths);
 * - `bias-correction-math-sqrt`: the foreach denominator divides by
 *   math.sqrt(bias_correction2), correctly rounded, instead of Python's
 *   bias_correction2 ** 0.5, glibc's pow (torch 1.13's foreach path).
 */
export type Quirk = "mu-product-next-twice" | "exp-avg-mul-add" | "bias-correction-math-sqrt";
export const QUIRKS: readonly Quirk[] = ["mu-product-next-twice", "exp-avg-mul-add", "bias-correction-math-sqrt"];

/** Each formula's quirks, per code path. */
export const FORMULA_QUIRKS: Readonly<Record<Formula, Readonly<Record<CodePath, readonly Quirk[]>>>> = {
  "torch-2": { forloop: [], foreach: [] },
  "torch-1.13": { forloop: ["mu-product-next-twice", "exp-avg-mul-add"], foreach: ["exp-avg-mul-add", "bias-correction-math-sqrt"] },
};

/**
 * The parts of torch.optim.NAdam's API an implementation may lack, so that a
 * case needing one is skipped rather than failed:
 * - `tensor-lr`: a 0-d float32 tensor `lr` (its own rounding on the for-loop path);
 * - `differentiable`: the for-loop path's `differentiable=True` branch;
 * - `state-dict`: `state_dict()` and `load_state_dict()`;
 * - `add-param-group`: `add_param_group()` after the first step.
 */
export type Feature = "tensor-lr" | "differentiable" | "state-dict" | "add-param-group";
export const FEATURES: readonly Feature[] = ["tensor-lr", "differentiable", "state-dict", "add-param-group"];
