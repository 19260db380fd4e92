/**
 * What each ONNX Runtime provider runs bit-exactly, and the graph choices that
 * make it so. Every claim here is checked by the property tests and the golden
 * corpus (impl/backends/property.test.ts, conformance), on the providers that
 * run where the tests run.
 */
import { DTYPES } from "../../../spec/float/dtype.ts";
import { CODE_PATHS, CPU_ROUNDING_PROFILES } from "../../../spec/nadam/types.ts";
import type { ProviderTraits } from "./backend.ts";
import type { ExecutionProvider } from "./ort.ts";

const FEATURES = ["tensor-lr", "differentiable"] as const;

export const PROVIDER_TRAITS: Readonly<Record<ExecutionProvider, ProviderTraits>> = {
  cpu: {
    provider: "cpu",
    // every dtype: float16 and bfloat16 computed in float32, each kernel's result rounded by a Cast (round to
    // nearest even, overflow to inf: measured), bfloat16 carried in float32 tensors
    support: { dtypes: DTYPES, paths: CODE_PATHS, profiles: CPU_ROUNDING_PROFILES, features: FEATURES },
    deviceResident: false,
  },
  webgpu: {
    provider: "webgpu",
    // WGSL has no float64: no fma emulation, so the unfused profile only. float16 computes in
    // float32 and rounds each kernel's result (Cast to float16 rounds to nearest even, overflow to inf: measured).
    support: { dtypes: ["float32", "float16", "complex64"], paths: CODE_PATHS, profiles: ["default"], features: FEATURES },
    deviceResident: true,
    // a WebGPU shader binds at most 16 storage buffers (measured: "Too many storage buffers in shader", a Split into 16)
    fanIn: 8,
  },
  cuda: {
    provider: "cuda",
    support: { dtypes: ["float32", "float64", "complex64", "complex128"], paths: CODE_PATHS, profiles: CPU_ROUNDING_PROFILES, features: FEATURES },
    deviceResident: true,
  },
};
