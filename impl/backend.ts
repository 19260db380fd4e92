/**
 * What a NAdam backend does: run one param group's update. The optimizer
 * front (impl/core/nadam.ts) owns params, groups, state, hooks and state
 * dicts; a backend owns the arithmetic. Adding a backend means one object that
 * satisfies this interface.
 */
import type { CodePath, DType, RoundingProfile } from "../spec/nadam/types.ts";
import type { Tensor } from "./typed/tensor.ts";

/** The per-param state PyTorch keeps, as tensors (state_dict keys). */
export interface NadamState {
  /** 0-d float32 (float64 when the default dtype is float64) */
  step: Tensor;
  /** 0-d, same dtype rule as step; load_state_dict casts it to the param's dtype */
  mu_product: Tensor;
  exp_avg: Tensor;
  exp_avg_sq: Tensor;
}

/** A group's hyper-parameters, as the functional nadam() receives them. */
export interface GroupHyperParameters {
  /** A number, or the value of a 0-d float32 tensor when lrIsTensor. */
  readonly lr: number;
  readonly lrIsTensor: boolean;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weight_decay: number;
  readonly momentum_decay: number;
  readonly decoupled_weight_decay: boolean;
  readonly maximize: boolean;
  /** The group's differentiable flag: PyTorch's other for-loop branch, which rounds differently. */
  readonly differentiable: boolean;
}

export interface GroupStep {
  /** The group's params that have a grad, in group order (a param may repeat). */
  readonly params: readonly Tensor[];
  readonly grads: readonly Tensor[];
  readonly states: readonly NadamState[];
  readonly hyper: GroupHyperParameters;
  readonly path: CodePath;
}

export interface NadamBackend {
  readonly name: string;
  /** PyTorch's device type this backend stands for ("cpu"): decides what foreach=None means. */
  readonly device: "cpu" | "cuda";
  readonly dtypes: readonly DType[];
  /** The rounding profile the backend reproduces, when it is bit-exact to a CPU profile. */
  readonly profile?: RoundingProfile;
  stepGroup(step: GroupStep): void;
}
