/**
 * The registry of built-in backends, one line each. `npm start`, `nadam-reference
 * check --builtin` and the tests run every entry (an entry that cannot run here
 * is reported skipped, with its reason).
 */
import type { BackendEntry, SyncBackend } from "../backend.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { onnxRuntimeCpu, onnxRuntimeCuda, onnxRuntimeWebgpu } from "./onnx-runtime/index.ts";
import { tfjsCpu, tfjsTensorflow, tfjsWasm, tfjsWebgpu } from "./tfjs/index.ts";
import { typedArray, typedArrayBackend } from "./typed-array/index.ts";
import { wasmSimd } from "./wasm/index.ts";

export const BACKENDS: readonly BackendEntry[] = [typedArray, wasmSimd, onnxRuntimeCpu, onnxRuntimeWebgpu, onnxRuntimeCuda, tfjsCpu, tfjsWasm, tfjsWebgpu, tfjsTensorflow];

/** The backend `new NAdam(...)` uses when none is given: typed arrays, the vectorized (AVX2) profile. */
export function defaultBackend(): SyncBackend<Tensor> {
  return typedArrayBackend();
}
