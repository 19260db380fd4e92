/**
 * Loading TensorFlow.js and one of its backends, on demand. The tfjs packages
 * are optional peer dependencies: nothing imports them until a tfjs backend is
 * asked for, and a missing package or device is a reason to skip, not a crash.
 */
import type { Tfjs } from "./kernel.ts";

/** The tfjs backends this project runs, by tfjs's own backend names. */
export type TfjsBackendName = "cpu" | "wasm" | "webgpu" | "tensorflow";

export type Loaded = { readonly tf: Tfjs; readonly reason?: undefined } | { readonly tf?: undefined; readonly reason: string };

function message(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n")[0]!.slice(0, 300);
}

// The `webgpu` package's GPU object must outlive every device made from it: when
// it is garbage-collected, Dawn tears the device down under tfjs (segfault).
let dawnGpu: unknown;

async function registerWebgpu(): Promise<string | undefined> {
  let dawn: { create(flags: string[]): unknown; globals: Record<string, unknown> };
  try {
    dawn = (await import("webgpu")) as unknown as typeof dawn;
  } catch (error) {
    return `the \`webgpu\` package (Dawn for Node) is not installed: ${message(error)}`;
  }
  if (dawnGpu === undefined) {
    Object.assign(globalThis, dawn.globals);
    dawnGpu = dawn.create([]);
  }
  const gpu = dawnGpu as { requestAdapter(): Promise<unknown> };
  const adapter = await gpu.requestAdapter().catch(() => null);
  if (adapter === null || adapter === undefined) return "no WebGPU adapter (Dawn found no Vulkan driver: install a GPU driver, or Mesa's lavapipe)";
  // tfjs-backend-webgpu finds the GPU where a browser has it.
  const nav = (globalThis as { navigator?: object }).navigator ?? {};
  Object.defineProperty(globalThis, "navigator", { value: { ...Object.fromEntries(Object.entries(nav)), gpu }, configurable: true, writable: true });
  try {
    await import("@tensorflow/tfjs-backend-webgpu");
  } catch (error) {
    return `@tensorflow/tfjs-backend-webgpu is not installed: ${message(error)}`;
  }
  return undefined;
}

async function registerBackend(name: TfjsBackendName): Promise<string | undefined> {
  try {
    switch (name) {
      case "cpu":
        await import("@tensorflow/tfjs-backend-cpu");
        return undefined;
      case "wasm":
        await import("@tensorflow/tfjs-backend-wasm");
        return undefined;
      case "webgpu":
        return await registerWebgpu();
      case "tensorflow":
        // tfjs-node-gpu (CUDA) when installed, else tfjs-node: both register the `tensorflow` backend.
        try {
          await import("@tensorflow/tfjs-node-gpu" as string);
        } catch (gpu) {
          try {
            await import("@tensorflow/tfjs-node" as string);
          } catch (cpu) {
            return `neither @tensorflow/tfjs-node-gpu (${message(gpu)}) nor @tensorflow/tfjs-node (${message(cpu)}) loads; both need libtensorflow, which their install script downloads from outside the npm registry`;
          }
        }
        return undefined;
    }
  } catch (error) {
    return `@tensorflow/tfjs-backend-${name} is not installed: ${message(error)}`;
  }
}

const loads = new Map<TfjsBackendName, Promise<Loaded>>();

/** tfjs-core with backend `name` registered and initialised (once per process), or why not. */
export function loadTfjs(name: TfjsBackendName): Promise<Loaded> {
  let load = loads.get(name);
  if (load === undefined) {
    load = (async (): Promise<Loaded> => {
      let tf: Tfjs;
      try {
        tf = (await import("@tensorflow/tfjs-core")) as Tfjs;
      } catch (error) {
        return { reason: `@tensorflow/tfjs-core is not installed: ${message(error)}` };
      }
      const reason = await registerBackend(name);
      if (reason !== undefined) return { reason };
      if (tf.findBackendFactory(name) === null) return { reason: `no tfjs backend named ${name} registered` };
      const previous = tf.getBackend();
      try {
        if (!(await tf.setBackend(name))) return { reason: `the tfjs ${name} backend failed to initialise` };
      } catch (error) {
        return { reason: `the tfjs ${name} backend failed to initialise: ${message(error)}` };
      } finally {
        if (previous !== undefined && previous !== name) await tf.setBackend(previous);
      }
      return { tf };
    })();
    loads.set(name, load);
  }
  return load;
}

/** Make `name` tfjs's current backend (tfjs has one global current backend; tensors follow it). */
export async function useBackend(tf: Tfjs, name: TfjsBackendName): Promise<void> {
  if (tf.getBackend() !== name) await tf.setBackend(name);
}
