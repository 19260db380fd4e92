/** The wasm-simd backend's registry entry: generated WebAssembly SIMD kernels over a shared WebAssembly memory. */
import type { BackendEntry } from "../../backend.ts";
import { WASM_SUPPORT, wasmBackend } from "./backend.ts";
import { unavailableReason } from "./probe.ts";

export { wasmBackend, type WasmBackend, type WasmBackendOptions } from "./backend.ts";

export const wasmSimd: BackendEntry = {
  id: "wasm-simd",
  description: "NAdam as WebAssembly SIMD kernels over tensors in a shared WebAssembly memory, bit-exact to PyTorch's CPU kernels under either rounding profile, every dtype",
  supports: WASM_SUPPORT,
  availability: async () => {
    const reason = unavailableReason();
    return reason === undefined ? { available: true } : { available: false, reason };
  },
  create: async ({ profile }) => wasmBackend({ profile }),
};
