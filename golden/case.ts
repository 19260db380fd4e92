/**
 * The golden file format, "nadam-golden/1": one NAdam run of real PyTorch.
 * golden/schema.json is its JSON Schema; these are the same shapes as types.
 * Every tensor value is hex: each element's IEEE bit pattern, big-endian,
 * concatenated in row-major order (spec/float/codec.ts).
 */
import type { DType } from "../spec/float/dtype.ts";
import type { RoundingProfile } from "../spec/nadam/types.ts";

export const GOLDEN_FORMAT = "nadam-golden/1";

export interface GoldenTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly hex: string;
}

/** NAdam constructor options as given (defaults omitted); lr_is_tensor: lr was a 0-d float32 tensor. */
export interface GoldenOptions {
  readonly lr?: number;
  readonly lr_is_tensor?: boolean;
  readonly betas?: readonly [number, number];
  readonly eps?: number;
  readonly weight_decay?: number;
  readonly momentum_decay?: number;
  readonly decoupled_weight_decay?: boolean;
  readonly maximize?: boolean;
  readonly differentiable?: boolean;
}

export type GoldenEvent =
  | { readonly kind: "set"; readonly group: number; readonly key: keyof GoldenOptions; readonly value: number | boolean }
  | { readonly kind: "add_param_group"; readonly options: GoldenOptions; readonly params: readonly number[] }
  | { readonly kind: "reload" };

/** step and mu_product: [dtype, hex]; the moments: hex in the param's dtype and shape. */
export interface GoldenState {
  readonly step: readonly [DType, string];
  readonly mu_product: readonly [DType, string];
  readonly exp_avg: string;
  readonly exp_avg_sq: string;
}

export interface GoldenStep {
  /** Applied in order before the step's grads are set. */
  readonly events?: readonly GoldenEvent[];
  /** One entry per param that exists at this step (id order); null: no grad. */
  readonly grads: readonly (string | null)[];
  /** After the step. */
  readonly params: readonly string[];
  readonly state: readonly (GoldenState | null)[];
}

export interface GoldenProvenance {
  readonly version: string;
  /** What torch.backends.cpu.get_cpu_capability() said: "AVX2", "AVX512", "NO AVX"... */
  readonly cpu_capability: string;
  /** How its kernels round: a CPU profile, or `cuda` for a run on a GPU. */
  readonly profile: RoundingProfile;
  readonly python: string;
  /** The GPU of a `cuda` run (torch.cuda.get_device_name()); absent on the CPU. */
  readonly device?: string;
}

export interface GoldenCase {
  readonly format: typeof GOLDEN_FORMAT;
  readonly id: string;
  readonly description: string;
  readonly tags: readonly string[];
  readonly torch: GoldenProvenance;
  readonly dtype: DType;
  readonly foreach: boolean;
  /** torch.get_default_dtype() during the run: the dtype of new step / mu_product tensors. */
  readonly default_dtype: "float32" | "float64";
  /** Every param the run ever creates, in id order (ids are state_dict ids). */
  readonly params: readonly { readonly name: string; readonly init: GoldenTensor }[];
  readonly param_groups: readonly { readonly options: GoldenOptions; readonly params: readonly number[] }[];
  readonly steps: readonly GoldenStep[];
}
