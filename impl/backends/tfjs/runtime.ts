/**
 * Loading TensorFlow.js and one of its backends, on demand. The tfjs packages
 * are optional peer dependencies: nothing imports them until a tfjs backend is
 * asked for, and a missing package or device is a reason to skip, not a crash.
 */
import type { Tfjs } from "./kernel.ts";

/** The tfjs backends this project runs, by tfjs's own backend names. */
export type TfjsBackendName = "cpu" | "wasm" | "webgpu" | "tensorflow";

export type Loaded = { readonly tf: Tfjs; readonly reason?: undefined } | { readonly tf?: undefined; readonly reason: string };

function notInstalled(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND";
}

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
    return notInstalled(error) ? "the `webgpu` package (Dawn for Node) is not installed" : `the \`webgpu\` package (Dawn for Node) does not load: ${message(error)}`;
  }
  if (dawnGpu === undefined) {
    Object.assign(globalThis, dawn.globals);
    dawnGpu = dawn.create([]);
  }
  const gpu = dawnGpu as { requestAdapter(): Promise<unknown> };
  const adapter = await gpu.requestAdapter().catch(() => null);
  if (adapter === null || adapter === undefined) return "no WebGPU adapter (Dawn found no Vulkan driver: install a GPU driver, or Mesa's lavapipe)";
  // tfjs-backend-webgpu finds the GPU where a browser has it: navigator.gpu (Node 21+ has a navigator; Node 20 none).
  const nav = (globalThis as { navigator?: object }).navigator;
  if (nav === undefined) Object.defineProperty(globalThis, "navigator", { value: { gpu }, configurable: true, writable: true });
  else if (!("gpu" in nav)) Object.defineProperty(nav, "gpu", { value: gpu, configurable: true });
  try {
    await import("@tensorflow/tfjs-backend-webgpu");
  } catch (error) {
    return notInstalled(error) ? "@tensorflow/tfjs-backend-webgpu is not installed" : `@tensorflow/tfjs-backend-webgpu does not load: ${message(error)}`;
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
        for (const name of ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]) {
          try {
            await import(name);
            return undefined;
          } catch (error) {
            if (!notInstalled(error)) return `${name} is installed but does not load (${message(error)}): it needs the libtensorflow its install script downloads`;
          }
        }
        return "neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed";
    }
  } catch (error) {
    return notInstalled(error) ? `@tensorflow/tfjs-backend-${name} is not installed` : `@tensorflow/tfjs-backend-${name} does not load: ${message(error)}`;
  }
}

const loads = new Map<TfjsBackendName, Promise<Loaded>>();
// One load at a time: each switches tfjs's one global backend while it initialises.
let queue: Promise<unknown> = Promise.resolve();

/** tfjs-core with backend `name` registered and initialised (once per process), or why not. */
export function loadTfjs(name: TfjsBackendName): Promise<Loaded> {
  let load = loads.get(name);
  if (load === undefined) {
    load = queue.then(async (): Promise<Loaded> => {
      let tf: Tfjs;
      try {
        tf = (await import("@tensorflow/tfjs-core")) as Tfjs;
      } catch (error) {
        return { reason: notInstalled(error) ? "@tensorflow/tfjs-core is not installed" : `@tensorflow/tfjs-core does not load: ${message(error)}` };
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
      // tfjs-backend-cpu's first write advertises tfjs-node on stderr; the skipped `tensorflow` entry already says how to get it.
      if (name === "cpu") (tf.findBackend("cpu") as { firstUse?: boolean } | null)!.firstUse = false;
      return { tf };
    });
    queue = load;
    loads.set(name, load);
  }
  return load;
}

/** Make `name` tfjs's current backend (tfjs has one global current backend; tensors follow it). */
export async function useBackend(tf: Tfjs, name: TfjsBackendName): Promise<void> {
  if (tf.getBackend() !== name) await tf.setBackend(name);
}
