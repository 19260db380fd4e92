/**
 * The TensorFlow.js backends' registry entries: one per tfjs backend. tfjs is
 * an optional peer dependency, loaded by dynamic import() only when an entry
 * is asked whether it is available or created; an entry whose packages or
 * device are missing is reported skipped with the reason.
 */
import type { BackendEntry, BackendSupport } from "../../backend.ts";
import type { TfjsBackendName } from "./runtime.ts";

/**
 * What each tfjs backend earns (measured: README, "TensorFlow.js"; the
 * property tests and the suite hold them to it). float32 only: tfjs has no
 * float64 and no 16-bit arithmetic.
 */
const SUPPORT: Readonly<Record<TfjsBackendName, BackendSupport>> = {
  cpu: { dtypes: ["float32"], paths: ["forloop", "foreach"], profiles: ["default", "vectorized"], features: ["tensor-lr", "differentiable"] },
  wasm: { dtypes: ["float32"], paths: ["forloop", "foreach"], profiles: ["default", "vectorized"], features: ["tensor-lr", "differentiable"] },
  // The vectorized profile's fma is exact in WGSL only while its product's error term is a normal float32
  // (fma.ts): bit-exact claims stop at `default`; the README gives the vectorized profile's measured distance.
  webgpu: { dtypes: ["float32"], paths: ["forloop", "foreach"], profiles: ["default"], features: ["tensor-lr", "differentiable"] },
  // Unmeasured here (libtensorflow does not install on this machine): the default profile's op sequence, no fused kernel.
  tensorflow: { dtypes: ["float32"], paths: ["forloop", "foreach"], profiles: ["default"], features: ["tensor-lr", "differentiable"] },
};

const DESCRIPTIONS: Readonly<Record<TfjsBackendName, string>> = {
  cpu: "NAdam as TensorFlow.js ops on tfjs's cpu backend (@tensorflow/tfjs-backend-cpu)",
  wasm: "NAdam as TensorFlow.js ops on tfjs's wasm backend (@tensorflow/tfjs-backend-wasm, XNNPACK)",
  webgpu: "NAdam as TensorFlow.js ops on tfjs's webgpu backend (@tensorflow/tfjs-backend-webgpu over Dawn's `webgpu` package for Node)",
  tensorflow: "NAdam as TensorFlow.js ops on libtensorflow (@tensorflow/tfjs-node-gpu with CUDA, or @tensorflow/tfjs-node)",
};

function entry(name: TfjsBackendName): BackendEntry {
  return {
    id: `tfjs-${name}`,
    description: DESCRIPTIONS[name],
    supports: SUPPORT[name],
    async availability() {
      const { loadTfjs } = await import("./runtime.ts");
      const loaded = await loadTfjs(name);
      return loaded.tf ? { available: true } : { available: false, reason: loaded.reason };
    },
    async create({ profile }) {
      const [{ loadTfjs }, { tfjsBackend }, { defaultKernel, prepareUpdate }] = await Promise.all([import("./runtime.ts"), import("./backend.ts"), import("./update.ts")]);
      const loaded = await loadTfjs(name);
      if (loaded.tf === undefined) throw new Error(`tfjs-${name} cannot run here: ${loaded.reason}`);
      const chosen = profile !== undefined && SUPPORT[name].profiles.includes(profile) ? profile : SUPPORT[name].profiles[0]!;
      const kernel = defaultKernel(name);
      await prepareUpdate(loaded.tf, name, chosen, kernel);
      return tfjsBackend({ tf: loaded.tf, backendName: name, profile: chosen, supports: SUPPORT[name], device: name === "cpu" || name === "wasm" ? "cpu" : "cuda", kernel });
    },
  };
}

export const tfjsCpu = entry("cpu");
export const tfjsWasm = entry("wasm");
export const tfjsWebgpu = entry("webgpu");
export const tfjsTensorflow = entry("tensorflow");
