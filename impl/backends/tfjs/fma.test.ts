/**
 * The NadamFma32 kernel against the spec's exact float32 fma, on each tfjs
 * backend that runs here: exact on cpu and wasm; on webgpu exact except where
 * the product's error term falls below float32's normal range (|x·y| < 2^-100),
 * which is why tfjs-webgpu claims the `default` profile only.
 */
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, test } from "vitest";
import { fma32 } from "../../../spec/float/fma.ts";
import { RandomFloats } from "../../../test/support/random-floats.ts";
import { FMA_BACKENDS, fmaFor, prepareFma } from "./fma.ts";
import { loadTfjs } from "./runtime.ts";

/** 200,000 float32 triples: random, near cancellation, huge, and tiny products. */
function triples(): [Float32Array, Float32Array, Float32Array] {
  const rng = new RandomFloats(21);
  const n = 200_000;
  const [x, y, z] = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
  for (let i = 0; i < n; i++) {
    const kind = i % 4;
    x[i] = kind === 2 ? rng.float32(40, 60) : kind === 3 ? rng.float32(-75, -50) : rng.float32();
    y[i] = kind === 2 ? rng.float32(40, 60) : kind === 3 ? rng.float32(-75, -50) : rng.float32();
    z[i] = kind === 1 ? Math.fround(-x[i]! * y[i]! * (1 + rng.unit() * 2 ** -22)) : kind === 3 ? rng.float32(-140, -120) : rng.float32();
  }
  return [x, y, z];
}

const loaded = await Promise.all(FMA_BACKENDS.map(async (name) => [name, await loadTfjs(name)] as const));

describe.each(loaded)("tfjs %s", (name, l) => {
  test.skipIf(l.tf === undefined)(`NadamFma32 rounds once, as the spec's fma32${l.tf ? "" : ` — skipped: ${l.reason}`}`, async () => {
    await tf.setBackend(name);
    await prepareFma(tf, name, "vectorized");
    const fma = fmaFor(tf, name, "vectorized")!;
    const [x, y, z] = triples();
    const result = fma(tf.tensor1d(x), tf.tensor1d(y), tf.tensor1d(z));
    const got = await result.data();
    result.dispose();
    const wrong: number[] = [];
    for (let i = 0; i < x.length; i++) if (!Object.is(got[i], fma32(x[i]!, y[i]!, z[i]!))) wrong.push(i);
    if (name === "webgpu") {
      // the WGSL emulation loses only a subnormal error term: every miss has a tiny product
      expect(wrong.filter((i) => !(Math.abs(x[i]! * y[i]!) < 2 ** -100))).toEqual([]);
    } else {
      expect(wrong).toEqual([]);
    }
    // and a 0-d operand broadcasts
    const broadcast = fma(tf.scalar(x[5]!), tf.tensor1d(y.subarray(0, 3)), tf.tensor1d(z.subarray(0, 3)));
    expect([...(await broadcast.data())]).toEqual([0, 1, 2].map((i) => fma32(x[5]!, y[i]!, z[i]!)));
    broadcast.dispose();
  });
});
