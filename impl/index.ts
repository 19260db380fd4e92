/** The optimizer users hold: torch.optim.NAdam's API over pluggable backends. */
export { NAdam, registerOptimizerStepPostHook, registerOptimizerStepPreHook } from "./core/nadam.ts";
export type { NadamConfig, StepPreHook, StepPostHook, StateDictPreHook, StateDictPostHook, LoadStateDictPreHook, LoadStateDictPostHook } from "./core/nadam.ts";
export type { NadamOptions, LearningRate } from "./core/options.ts";
export type { ParamGroup, ParamGroupInput, ParamsInput } from "./core/param-groups.ts";
export type { StateDict, PackedGroup, ParamState } from "./core/state-dict.ts";
export { RemovableHandle } from "./core/hooks.ts";
export { AssertionError, IndexError, KeyError, PyTypeError, RuntimeError, ValueError } from "./core/errors.ts";
export type { NadamBackend, NadamState, GroupStep, GroupHyperParameters } from "./backend.ts";
export { Tensor } from "./typed/tensor.ts";
export { typedArrayBackend } from "./typed/backend.ts";
export type { TypedArrayBackendOptions } from "./typed/backend.ts";
