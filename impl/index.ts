/** The optimizer users hold: torch.optim.NAdam's API over pluggable backends. */
export { NAdam, registerOptimizerStepPostHook, registerOptimizerStepPreHook } from "./core/nadam.ts";
export type { NadamConfig, StepPreHook, StepPostHook, StateDictPreHook, StateDictPostHook, LoadStateDictPreHook, LoadStateDictPostHook } from "./core/nadam.ts";
export type { NadamOptions, LearningRate } from "./core/options.ts";
export type { ParamGroup, ParamGroupInput, ParamsInput } from "./core/param-groups.ts";
export type { StateKey } from "./core/state-dict.ts";
export { RemovableHandle } from "./core/hooks.ts";
export { AssertionError, IndexError, KeyError, PyTypeError, RuntimeError, ValueError } from "./core/errors.ts";
export type { AsyncBackend, Availability, BackendEntry, BackendSupport, GroupStep, NadamBackend, NadamState, SyncBackend } from "./backend.ts";
export { BACKENDS, defaultBackend } from "./backends/index.ts";
export { typedArrayBackend } from "./backends/typed-array/index.ts";
export type { TypedArrayBackendOptions } from "./backends/typed-array/index.ts";
export { wasmBackend } from "./backends/wasm/index.ts";
export type { WasmBackend, WasmBackendOptions } from "./backends/wasm/index.ts";
export {
  ONNX_IR_VERSION,
  ONNX_OPSET,
  onnxRuntimeBackend,
  onnxRuntimeCpu,
  onnxRuntimeCuda,
  onnxRuntimeWebgpu,
  onnxStepGraph,
  onnxStepModel,
  OrtStateTensor,
  PROVIDER_TRAITS as ONNX_RUNTIME_PROVIDERS,
  releaseSessions as releaseOnnxRuntimeSessions,
  SCALAR_INPUTS,
} from "./backends/onnx-runtime/index.ts";
export type { OnnxRuntimeBackend, StepGraphSignature, TransferCounts } from "./backends/onnx-runtime/index.ts";
export { Tensor, deepCopy } from "../tensor/index.ts";
export type { PackedGroup, ParamState, StateDict, Storage } from "../tensor/index.ts";
export type { CodePath, DType, RoundingProfile } from "../spec/index.ts";
