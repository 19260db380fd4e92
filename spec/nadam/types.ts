/** The closed vocabularies of the spec: dtypes, rounding profiles, code paths, formulas. */

/** Param dtypes, under PyTorch's names. */
export type DType = "float64" | "float32" | "float16" | "bfloat16";
export const DTYPES: readonly DType[] = ["float64", "float32", "float16", "bfloat16"];

/**
 * PyTorch's CPU rounding profiles (see ../shared/reference/torch-cpu-rounding.md):
 * - `default`: the kernels PyTorch runs with ATEN_CPU_CAPABILITY=default (no AVX):
 *   every multiply and add rounded separately;
 * - `vectorized`: the AVX2 / AVX512 kernels, whose add(alpha=), addcmul and lerp
 *   use fused multiply-add. This is what a normal x86-64 machine runs.
 */
export type RoundingProfile = "default" | "vectorized";
export const ROUNDING_PROFILES: readonly RoundingProfile[] = ["default", "vectorized"];

/**
 * PyTorch's two NAdam code paths: `forloop` is `_single_tensor_nadam`
 * (foreach=False, the default on CPU), `foreach` is `_multi_tensor_nadam`.
 */
export type CodePath = "forloop" | "foreach";
export const CODE_PATHS: readonly CodePath[] = ["forloop", "foreach"];

/**
 * Which PyTorch's formula to follow. `torch-2` is every release since 2.1 (the
 * spec's default); `torch-1.13` is the old single-tensor path with the
 * `mu_product_next` mistake, kept to recognise ports that copied it.
 */
export type Formula = "torch-2" | "torch-1.13";
