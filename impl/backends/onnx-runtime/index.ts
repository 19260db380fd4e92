/**
 * The ONNX Runtime backends' registry entries, one per execution provider:
 * `cpu` (bundled with onnxruntime-node), `webgpu` (bundled; needs a Vulkan,
 * Metal or D3D12 adapter — on a machine without a GPU, Mesa's lavapipe) and
 * `cuda` (needs ONNX Runtime's CUDA provider libraries, which onnxruntime-node
 * downloads at install unless told not to). A provider that cannot run here
 * is reported skipped with ONNX Runtime's own reason.
 */
import { existsSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { NADAM_DEFAULTS } from "../../../spec/nadam/defaults.ts";
import { Tensor } from "../../../tensor/tensor.ts";
import type { Availability, BackendEntry } from "../../backend.ts";
import { onnxRuntimeBackend, type ProviderTraits } from "./backend.ts";
import { stepModel, type StepGraphSignature } from "./graph.ts";
import { loadOrt, requireOrt, type ExecutionProvider } from "./ort.ts";
import { PROVIDER_TRAITS } from "./support.ts";

export { onnxRuntimeBackend, releaseSessions, OrtStateTensor, type OnnxRuntimeBackend, type TransferCounts } from "./backend.ts";
export { SCALAR_INPUTS, stepGraph as onnxStepGraph, type StepGraphSignature } from "./graph.ts";
export { ONNX_IR_VERSION, ONNX_OPSET } from "./onnx.ts";
export { PROVIDER_TRAITS } from "./support.ts";

const probes = new Map<ExecutionProvider, Promise<Availability>>();

/** Whether a provider runs here: onnxruntime-node loads, and a one-op session on the provider runs. */
function availability(provider: ExecutionProvider): Promise<Availability> {
  let probe = probes.get(provider);
  if (probe === undefined) {
    probe = (async (): Promise<Availability> => {
      const ort = await loadOrt();
      if (ort instanceof Error) return { available: false, reason: ort.message };
      const missing = missingProviderLibrary(provider);
      if (missing !== null) return { available: false, reason: missing };
      try {
        // one real step of a one-element param: loads the provider and runs a step graph on it
        const traits = PROVIDER_TRAITS[provider];
        const backend = onnxRuntimeBackend(ort, traits, traits.support.profiles[0] ?? "default");
        const param = Tensor.from([1], "float32");
        const state = backend.initState(param, "float32");
        await backend.stepGroup({ params: [param], grads: [Tensor.from([0.5], "float32")], states: [state], hyper: NADAM_DEFAULTS, path: "forloop" });
        if (!(param.get(0) < 1)) throw new Error(`a step from 1 with grad 0.5 gave ${param.get(0)}`);
        return { available: true };
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        return { available: false, reason: `ONNX Runtime's ${provider} execution provider does not run here: ${message.split("\n")[0]}` };
      }
    })();
    probes.set(provider, probe);
  }
  return probe;
}

/**
 * Why a provider that onnxruntime-node loads from a separate library cannot
 * load, without trying (a failed try prints ONNX Runtime's error log on stderr):
 * CUDA's libraries are downloaded by onnxruntime-node's install script, which
 * `onnxruntime-node-install=skip` (needed where that download is not reachable) turns off.
 */
function missingProviderLibrary(provider: ExecutionProvider): string | null {
  if (provider !== "cuda") return null;
  let binding: string;
  try {
    binding = dirname(createRequire(import.meta.url).resolve("onnxruntime-node"));
  } catch {
    return null; // let the try report it
  }
  const bin = join(binding, "..", "bin");
  const folders = existsSync(bin) ? readdirSync(bin).map((napi) => join(bin, napi, process.platform, process.arch)) : [];
  const library = process.platform === "win32" ? "onnxruntime_providers_cuda.dll" : "libonnxruntime_providers_cuda.so";
  if (folders.some((folder) => existsSync(join(folder, library)))) return null;
  return `ONNX Runtime's cuda execution provider is not installed: no ${library} beside onnxruntime-node's binding (its install script downloads it; reinstall without onnxruntime-node-install=skip, on a machine with CUDA 12 or 13)`;
}

function entry(provider: ExecutionProvider, description: string): BackendEntry {
  const traits: ProviderTraits = PROVIDER_TRAITS[provider];
  return {
    id: `onnxruntime-${provider}`,
    description,
    supports: traits.support,
    availability: () => availability(provider),
    async create({ profile }) {
      return onnxRuntimeBackend(await requireOrt(), traits, profile ?? traits.support.profiles[0] ?? "default");
    },
  };
}

/** The ModelProto bytes of a step graph: what the backends run, for any ONNX runtime. */
export function onnxStepModel(signature: StepGraphSignature): Uint8Array {
  return stepModel(signature, { name: "nadam-reference", version: "1" });
}

export const onnxRuntimeCpu = entry("cpu", "NAdam as ONNX graphs on ONNX Runtime's CPU provider (onnxruntime-node)");
export const onnxRuntimeWebgpu = entry("webgpu", "NAdam as ONNX graphs on ONNX Runtime's WebGPU provider (onnxruntime-node's bundled Dawn)");
export const onnxRuntimeCuda = entry("cuda", "NAdam as ONNX graphs on ONNX Runtime's CUDA provider");
