/**
 * The seam, tried with backends that are not the typed-array one: an
 * asynchronous backend whose state tensors are its own objects (as a device's
 * would be), and a backend that supports less. The optimizer must drive the
 * first through its async methods only, materialise host tensors only for a
 * state dict, and refuse what the second cannot run before changing anything.
 */
import { describe, expect, test } from "vitest";
import type { AsyncBackend, GroupStep, NadamState, SyncBackend } from "./backend.ts";
import { NAdam, RuntimeError, Tensor, typedArrayBackend } from "./index.ts";

/** A state tensor "on the device": the host never sees its storage except through toHost. */
class DeviceTensor {
  constructor(readonly values: Tensor) {}
}

/** The typed-array arithmetic behind an asynchronous interface with device-owned state, counting transfers. */
function fakeDeviceBackend(): AsyncBackend<DeviceTensor> & { downloads: number; uploads: number } {
  const inner = typedArrayBackend({ profile: "vectorized" });
  const unwrap = (s: NadamState<DeviceTensor>): NadamState<Tensor> => ({ step: s.step.values, mu_product: s.mu_product.values, exp_avg: s.exp_avg.values, exp_avg_sq: s.exp_avg_sq.values });
  const backend = {
    name: "fake-device",
    device: "cuda" as const,
    supports: inner.supports,
    asynchronous: true as const,
    downloads: 0,
    uploads: 0,
    initState(param: Tensor, scalarDtype: "float32" | "float64"): NadamState<DeviceTensor> {
      const s = inner.initState(param, scalarDtype);
      return { step: new DeviceTensor(s.step), mu_product: new DeviceTensor(s.mu_product), exp_avg: new DeviceTensor(s.exp_avg), exp_avg_sq: new DeviceTensor(s.exp_avg_sq) };
    },
    fromHost(tensor: Tensor): DeviceTensor {
      backend.uploads++;
      return new DeviceTensor(tensor.clone());
    },
    isTensor: (value: unknown): value is DeviceTensor => value instanceof DeviceTensor,
    async stepGroup(step: GroupStep<DeviceTensor>): Promise<void> {
      await Promise.resolve(); // completes later, as a queue submission would
      inner.stepGroup({ ...step, states: step.states.map(unwrap) });
    },
    async toHost(tensor: DeviceTensor): Promise<Tensor> {
      backend.downloads++;
      await Promise.resolve();
      return tensor.values.clone();
    },
  };
  return backend;
}

function model(): { params: Tensor[]; grads: () => void } {
  const w = Tensor.from([0.5, -1.25, 2, 0.125, -0.75, 1], "float32", [2, 3]);
  const b = Tensor.from([0.1, -0.2, 0.3], "float32", [3]);
  let k = 0;
  const grads = (): void => {
    k++;
    w.grad = Tensor.from(w.toArray().map((x, i) => Math.sin(x * 3 + i + k)), "float32", w.shape);
    b.grad = Tensor.from(b.toArray().map((x, i) => Math.cos(x * 2 + i * k)), "float32", b.shape);
  };
  return { params: [w, b], grads };
}

describe("an asynchronous backend with device-owned state", () => {
  test("step() and stateDict() refuse it by name and change nothing; the async forms work", async () => {
    const { params, grads } = model();
    const optimizer = new NAdam(params, { lr: 0.01 }, { backend: fakeDeviceBackend() });
    grads();
    const before = params.map((p) => p.toArray());
    expect(() => optimizer.step()).toThrow(RuntimeError);
    expect(() => optimizer.step()).toThrow("the fake-device backend is asynchronous: use `await optimizer.stepAsync()` instead of step()");
    expect(params.map((p) => p.toArray())).toEqual(before);
    expect(optimizer.state.size).toBe(0);
    expect(() => optimizer.stateDict()).toThrow("use `await optimizer.stateDictAsync()`");
    await optimizer.stepAsync();
    expect(params[0]!.toArray()).not.toEqual(before[0]);
  });

  test("trains bit for bit like the typed-array backend; host tensors appear only when a state dict is asked for", async () => {
    const device = fakeDeviceBackend();
    const a = model();
    const b = model();
    // foreach given: on a "cuda" device PyTorch's default would be the foreach path.
    const onDevice = new NAdam(a.params, { lr: 0.01, weight_decay: 0.1, foreach: false }, { backend: device });
    const onHost = new NAdam(b.params, { lr: 0.01, weight_decay: 0.1, foreach: false }, { backend: typedArrayBackend({ profile: "vectorized" }) });
    for (let k = 0; k < 20; k++) {
      a.grads();
      b.grads();
      await onDevice.stepAsync();
      onHost.step();
    }
    expect(device.downloads).toBe(0);
    expect(a.params.map((p) => p.toArray())).toEqual(b.params.map((p) => p.toArray()));
    // optimizer.state holds the backend's own tensors, as PyTorch's holds device tensors.
    expect(onDevice.state.get(a.params[0]!)!.exp_avg).toBeInstanceOf(DeviceTensor);

    const fromDevice = await onDevice.stateDictAsync();
    expect(device.downloads).toBe(8); // four tensors for each of two params
    const fromHost = onHost.stateDict();
    for (const id of [0, 1]) {
      for (const key of ["step", "mu_product", "exp_avg", "exp_avg_sq"]) {
        expect((fromDevice.state[id]![key] as Tensor).toArray()).toEqual((fromHost.state[id]![key] as Tensor).toArray());
      }
    }
  });

  test("loadStateDict hands the loaded tensors to the backend; a resumed run continues exactly", async () => {
    const device = fakeDeviceBackend();
    const a = model();
    const first = new NAdam(a.params, { lr: 0.02, foreach: true }, { backend: typedArrayBackend() });
    for (let k = 0; k < 5; k++) {
      a.grads();
      first.step();
    }
    const saved = first.stateDict();
    const b = model();
    b.params.forEach((p, i) => p.copy_(a.params[i]!));
    const resumed = new NAdam(b.params, { lr: 0.02 }, { backend: device }); // foreach by default on "cuda"
    resumed.loadStateDict(saved);
    expect(device.uploads).toBe(8);
    expect(resumed.paramGroups[0]!.foreach).toBe(true); // the saved group's option
    expect(resumed.state.get(b.params[1]!)!.mu_product).toBeInstanceOf(DeviceTensor);
    for (let k = 0; k < 5; k++) b.grads(); // b's grads catch up with a's
    for (let k = 0; k < 5; k++) {
      a.grads();
      b.grads();
      first.step();
      await resumed.stepAsync();
    }
    expect(b.params.map((p) => p.toArray())).toEqual(a.params.map((p) => p.toArray()));
  });
});

describe("a backend that supports less", () => {
  function narrowBackend(): SyncBackend<Tensor> {
    const inner = typedArrayBackend();
    return { ...inner, name: "narrow", supports: { dtypes: ["float32"], paths: ["forloop"], profiles: ["vectorized"], features: [] } };
  }

  test.each([
    ["a float64 param", { dtype: "float64" as const }, "param_groups[0].params[0]: the narrow backend has no float64 params (it has float32)"],
    ["the foreach path", { foreach: true }, "param_groups[0].params[0]: the narrow backend has no foreach path (it has forloop)"],
    ["a tensor lr", { lr: Tensor.scalar(0.01) }, "param_groups[0].params[0]: the narrow backend has no tensor lr (it has none)"],
    ["the differentiable branch", { differentiable: true }, "param_groups[0].params[0]: the narrow backend has no differentiable branch (it has none)"],
  ])("%s is refused by name before anything changes", (_what, variant, message) => {
    const { dtype = "float32", ...options } = variant as { dtype?: "float32" | "float64" } & Record<string, unknown>;
    const p = Tensor.from([1, 2, 3], dtype);
    p.grad = Tensor.from([0.1, 0.2, 0.3], dtype);
    const optimizer = new NAdam([p], options, { backend: narrowBackend() });
    expect(() => optimizer.step()).toThrow(message);
    expect(p.toArray()).toEqual(Tensor.from([1, 2, 3], dtype).toArray());
    expect(optimizer.state.size).toBe(0);
  });
});

describe("rounding profiles a backend does not follow", () => {
  test("wasm-simd, a CPU backend, refuses `cuda` by name; typed-array follows it", async () => {
    const { wasmBackend } = await import("./backends/wasm/index.ts");
    expect(() => wasmBackend({ profile: "cuda" })).toThrow(new TypeError('the wasm-simd backend follows the default and vectorized profiles, not "cuda"'));
    expect(() => wasmBackend({ profile: "avx" as never })).toThrow(/not "avx"/);
    expect(typedArrayBackend({ profile: "cuda" }).name).toBe("typed-array (cuda)");
  });
});
