/**
 * The registry's tfjs backends (the seam; their bits are the property tests'
 * and the suite's): the moments stay on the tfjs backend and are never read
 * back by a step (only the new params are: the seam's params are host
 * Tensors), and no tensor leaks over 100 steps.
 */
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, test } from "vitest";
import { NAdam, Tensor } from "../../index.ts";
import type { TfjsStateTensor } from "./backend.ts";
import { tfjsCpu, tfjsWasm, tfjsWebgpu } from "./index.ts";

const entries = await Promise.all([tfjsCpu, tfjsWasm, tfjsWebgpu].map(async (entry) => [entry.id, entry, await entry.availability()] as const));

/** The dataIds of the moments the optimizer holds now. */
function stateDataIds(optimizer: NAdam): object[] {
  return [...optimizer.state.values()].flatMap((entry) =>
    ["exp_avg", "exp_avg_sq"].map((key) => ((entry as Record<string, TfjsStateTensor>)[key]!.device as tf.Tensor).dataId),
  );
}

describe.each(entries)("%s", (_id, entry, availability) => {
  const reason = availability.available ? "" : ` — skipped: ${availability.reason}`;
  test.each([false, true])(`foreach %s: 100 steps never read the state back, and leak no tensor${reason}`, async (foreach) => {
    if (!availability.available) return;
    const backend = await entry.create({ profile: "default" });
    const params = [Tensor.from([0.5, -1, 2, 0.25], "float32", [2, 2]), Tensor.from([1, -3], "float32"), Tensor.scalar(0.75)];
    const optimizer = new NAdam(params, { lr: 0.01, weight_decay: 0.01, foreach }, { backend });
    const step = async (k: number) => {
      params.forEach((p) => (p.grad = Tensor.from(p.toArray().map((x, i) => Math.cos(x + i + k)), "float32", p.shape)));
      await optimizer.stepAsync();
    };
    // tfjs-webgpu runs ops whose inputs (under 1,000 elements) are all still in host memory on the CPU
    // (WEBGPU_CPU_FORWARD; reading them there is no GPU read-back): without it every tensor here lives on the GPU
    if (entry.id === "tfjs-webgpu") tf.env().set("WEBGPU_CPU_FORWARD", false);
    await step(0);
    const before = tf.memory().numTensors;
    // every read of the backend's memory, by dataId (tfjs also reads host-resident inputs this way)
    const engine = tf.backend() as unknown as Record<string, (dataId: object) => unknown>;
    const { read, readSync } = engine as { read: (dataId: object) => unknown; readSync: (dataId: object) => unknown };
    const readIds = new Set<object>();
    engine.read = (dataId) => (readIds.add(dataId), read.call(engine, dataId));
    engine.readSync = (dataId) => (readIds.add(dataId), readSync.call(engine, dataId));
    const stateIds = new Set<object>(stateDataIds(optimizer));
    try {
      for (let k = 1; k <= 100; k++) {
        await step(k);
        for (const id of stateDataIds(optimizer)) stateIds.add(id);
      }
    } finally {
      engine.read = read;
      engine.readSync = readSync;
    }
    expect(stateIds.size).toBe(2 * params.length * 101); // new moments every step...
    expect([...stateIds].filter((id) => readIds.has(id))).toEqual([]); // ...none of them ever read
    expect(readIds.size).toBeGreaterThanOrEqual(100 * params.length); // the new params are (the seam's params are host Tensors)
    expect(tf.memory().numTensors).toBe(before);
    await backend.dispose?.();
    expect(tf.memory().numTensors).toBeLessThan(before);
    if (entry.id === "tfjs-webgpu") tf.env().set("WEBGPU_CPU_FORWARD", true);
  });
});
