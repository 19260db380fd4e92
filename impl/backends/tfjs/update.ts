/**
 * Which implementation of the update a tfjs backend runs: kernel.ts's tfjs
 * ops (every backend), or fused.ts's one WGSL shader per result (webgpu).
 * Both are PyTorch's op sequence and give the same bits.
 */
import type * as TF from "@tensorflow/tfjs-core";
import type { StepScalars } from "../../../spec/nadam/scalars.ts";
import type { NadamHyperParameters } from "../../../spec/nadam/step.ts";
import type { CodePath, RoundingProfile } from "../../../spec/nadam/types.ts";
import { fmaFor, prepareFma } from "./fma.ts";
import { fusedReady, fusedUpdate, prepareFused } from "./fused.ts";
import { nadamUpdate, type Moments, type Tfjs } from "./kernel.ts";

export type KernelChoice = "ops" | "fused";

/** One param's (or one flattened group's) update. */
export type Update = (m: Moments, grad: TF.Tensor, h: NadamHyperParameters, s: StepScalars, path: CodePath) => Moments;

/** The fused shader where there is one (webgpu), tfjs ops elsewhere. */
export function defaultKernel(backendName: string): KernelChoice {
  return backendName === "webgpu" ? "fused" : "ops";
}

/** Loads what `updateFor` needs for this backend, profile and kernel (once). */
export async function prepareUpdate(tf: Tfjs, backendName: string, profile: RoundingProfile, kernel: KernelChoice): Promise<void> {
  if (kernel === "fused") await prepareFused();
  await prepareFma(tf, backendName as Parameters<typeof prepareFma>[1], profile);
}

/**
 * The update to run (`fused` falls back to ops until prepareUpdate has loaded
 * the shader's helpers, and for the vectorized profile), and whether the foreach path flattens a group for it
 * (kernel.ts's nadamForeach): only for tfjs ops where a launch is dear. The
 * fused shader is 3 launches a param, fewer than flattening's concats and
 * per-param slices (measured: README, "TensorFlow.js").
 */
export function updateFor(tf: Tfjs, backendName: string, profile: RoundingProfile, kernel: KernelChoice): { update: Update; flatten: boolean } {
  // The shader with the emulated fma inlined measured worse than NadamFma32 between tfjs ops (85-88%
  // of the corpus's values identical, against 99.9%; its addcmul misses on normal operands too, cause
  // not found): the vectorized profile keeps the ops.
  if (kernel === "fused" && backendName === "webgpu" && profile === "default" && fusedReady()) return { update: (m, g, h, s, path) => fusedUpdate(tf, m, g, h, s, path, profile), flatten: false };
  const fma = fmaFor(tf, backendName as Parameters<typeof fmaFor>[1], profile);
  return { update: (m, g, h, s, path) => nadamUpdate(tf, m, g, h, s, path, fma), flatten: backendName !== "cpu" && backendName !== "wasm" };
}
