/**
 * The seam between the optimizer and the arithmetic. The optimizer front
 * (core/nadam.ts) owns params, groups, hooks and state dicts, and PyTorch's
 * rules about them; a backend owns NAdam's per-param state tensors and the
 * update. A backend is one folder under backends/ and one line in
 * backends/index.ts (the registry): the suite, `npm start` and the tests then
 * run it with no other edit.
 *
 * The math is spec/nadam/step.ts's. A backend takes its host-side scalars from
 * `stepScalars` (spec/nadam/scalars.ts) and restates only the per-element
 * kernel, which the property tests pin against the spec.
 */
import type { DType } from "../spec/float/dtype.ts";
import type { NadamHyperParameters } from "../spec/nadam/step.ts";
import type { CodePath, Feature, RoundingProfile } from "../spec/nadam/types.ts";
import type { Tensor } from "../tensor/tensor.ts";

/**
 * NAdam's state for one param, under PyTorch's keys, as tensors of the
 * backend's own kind `T` (host Tensors for a CPU backend; device buffers for a
 * GPU one). `optimizer.state` holds these, as PyTorch's holds device tensors.
 */
export interface NadamState<T = Tensor> {
  /** 0-d; float32, or float64 when the default dtype is float64 */
  step: T;
  /** 0-d; same dtype rule as step; load_state_dict casts it to the param's dtype */
  mu_product: T;
  exp_avg: T;
  exp_avg_sq: T;
}

/** One param group's update, as the functional nadam() receives it. */
export interface GroupStep<T = Tensor> {
  /** The group's params that have a grad, in group order (a param may repeat). */
  readonly params: readonly Tensor[];
  readonly grads: readonly Tensor[];
  readonly states: readonly NadamState<T>[];
  readonly hyper: NadamHyperParameters;
  readonly path: CodePath;
}

/** What a backend can run. The optimizer refuses anything else before it changes a value. */
export interface BackendSupport {
  readonly dtypes: readonly DType[];
  readonly paths: readonly CodePath[];
  /**
   * PyTorch CPU rounding profiles the backend reproduces bit for bit (it is
   * created for one of them). Empty for a backend judged under a measured tolerance.
   */
  readonly profiles: readonly RoundingProfile[];
  /** The optional parts of the arithmetic it has: `tensor-lr`, `differentiable`. */
  readonly features: readonly Extract<Feature, "tensor-lr" | "differentiable">[];
}

interface BackendBase<T> {
  readonly name: string;
  /** PyTorch's device type this backend stands for: decides what foreach=None and capturable mean. */
  readonly device: "cpu" | "cuda";
  readonly supports: BackendSupport;
  /** _init_group's lazy state for a param: step 0, mu_product 1 (0-d, `scalarDtype`), zero moments. */
  initState(param: Tensor, scalarDtype: "float32" | "float64"): NadamState<T>;
  /** A host tensor from a loaded state dict (already cast as PyTorch casts it) as this backend's tensor. */
  fromHost(tensor: Tensor): T;
  /** Whether a value in a state entry is this backend's tensor (an entry is complete when its four keys are). */
  isTensor(value: unknown): value is T;
  /** Release what the backend holds (device memory, sessions). */
  dispose?(): void | Promise<void>;
}

/** A backend whose update and read-back finish before they return: `step()` and `stateDict()` work. */
export interface SyncBackend<T = Tensor> extends BackendBase<T> {
  readonly asynchronous: false;
  stepGroup(step: GroupStep<T>): void;
  /** A state tensor as a host Tensor: the tensor itself where state lives on the host (no copy, as in PyTorch). */
  toHost(tensor: T): Tensor;
}

/** A backend whose work completes later (ONNX Runtime's run, a GPU read-back): `stepAsync()` and `stateDictAsync()`. */
export interface AsyncBackend<T = Tensor> extends BackendBase<T> {
  readonly asynchronous: true;
  stepGroup(step: GroupStep<T>): Promise<void>;
  toHost(tensor: T): Promise<Tensor>;
}

/** A backend; `T` is its state tensors' type, which the optimizer never looks inside. */
export type NadamBackend<T = Tensor> = SyncBackend<T> | AsyncBackend<T>;

/** Whether a backend can run on this machine; when not, why (reported as skipped, never as passed). */
export type Availability = { readonly available: true } | { readonly available: false; readonly reason: string };

/** A registry entry: one per backend (or one per configuration, such as an execution provider). */
export interface BackendEntry {
  /** Stable id: the suite's port name and `builtin:<id>`. */
  readonly id: string;
  readonly description: string;
  readonly supports: BackendSupport;
  /** Whether it can run here. Cheap; may load optional packages. */
  availability(): Promise<Availability>;
  /** An instance for one rounding profile (one of `supports.profiles`; ignored by a backend that has none). */
  create(options: { readonly profile?: RoundingProfile }): Promise<NadamBackend<unknown>>;
}

/**
 * The profile a backend was asked for (`vectorized` when none), or a TypeError naming the one it
 * cannot follow: a CPU backend handed `cuda` must refuse it, not round as the CPU does.
 */
export function chosenProfile(backend: string, supported: readonly RoundingProfile[], requested: RoundingProfile | undefined): RoundingProfile {
  const profile = requested ?? "vectorized";
  if (!supported.includes(profile)) throw new TypeError(`the ${backend} backend follows the ${supported.join(" and ")} profiles, not ${JSON.stringify(profile)}`);
  return profile;
}
