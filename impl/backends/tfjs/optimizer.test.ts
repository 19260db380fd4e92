/**
 * The tfjs-native front (optimizer.ts) on every tfjs backend that runs here:
 * PyTorch's bits through `applyGradients` and `minimize`, no read-back and no
 * leaked tensor per step, weights and state dicts that resume a run exactly,
 * serialization, and `tf.grad` through a step against finite differences of
 * the spec in float64.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-core/dist/register_all_gradients.js"; // what @tensorflow/tfjs imports for minimize and tf.grad
import { describe, expect, test } from "vitest";
import { sameValue } from "../../../golden/compare.ts";
import { NADAM_DEFAULTS } from "../../../spec/nadam/defaults.ts";
import { stepScalars } from "../../../spec/nadam/scalars.ts";
import { nadamStep, type NadamHyperParameters, type NadamParamState } from "../../../spec/nadam/step.ts";
import type { RoundingProfile } from "../../../spec/nadam/types.ts";
import { FMA_BACKENDS } from "./fma.ts";
import { nadamUpdate } from "./kernel.ts";
import { nadam, NadamOptimizer, type NadamConfig } from "./optimizer.ts";
import { loadTfjs, type TfjsBackendName } from "./runtime.ts";
import type { KernelChoice } from "./update.ts";

const NAMES: TfjsBackendName[] = ["cpu", "wasm", "webgpu"];
const loaded = await Promise.all(NAMES.map(async (name) => [name, await loadTfjs(name)] as const));

/** The spec's hyper-parameters for a config. */
function hyperOf(c: Required<Omit<NadamConfig, "foreach" | "profile" | "kernel">>): NadamHyperParameters {
  return { ...NADAM_DEFAULTS, lr: c.learningRate, betas: [c.beta1, c.beta2], eps: c.epsilon, weight_decay: c.weightDecay, momentum_decay: c.momentumDecay, decoupled_weight_decay: c.decoupledWeightDecay, maximize: c.maximize };
}

const CONFIG = { learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1, momentumDecay: 4e-3, decoupledWeightDecay: false, maximize: false };

/** Deterministic float32 grads for step k of a param of n elements. */
function gradValues(n: number, k: number, salt: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.fround(Math.sin(1 + i * 0.7 + k * 1.3 + salt) * 10 ** ((i % 5) - 2)));
}

/** Counts the backend's read-backs (read, readSync) while `run` runs. */
async function countReads(run: () => Promise<void> | void): Promise<number> {
  const backend = tf.backend() as unknown as Record<string, (...args: unknown[]) => unknown>;
  const originals = { read: backend.read!, readSync: backend.readSync! };
  let reads = 0;
  backend.read = (...args) => (reads++, originals.read.apply(backend, args));
  backend.readSync = (...args) => (reads++, originals.readSync.apply(backend, args));
  try {
    await run();
  } finally {
    backend.read = originals.read;
    backend.readSync = originals.readSync;
  }
  return reads;
}

describe.each(loaded.map(([name, l]) => [name, l] as const))("tfjs %s", (name, l) => {
  const skip = l.tf === undefined;
  const reason = skip ? ` — skipped: ${l.reason}` : "";
  const profiles: RoundingProfile[] = FMA_BACKENDS.includes(name) && name !== "webgpu" ? ["default", "vectorized"] : ["default"];
  const use = async () => {
    await tf.setBackend(name);
  };

  const kernels: KernelChoice[] = name === "webgpu" ? ["ops", "fused"] : ["ops"];
  const combos = kernels.flatMap((kernel) => profiles.flatMap((profile) => [false, true].map((foreach) => [kernel, profile, foreach] as const)));
  describe.each(combos)("kernel %s, profile %s, foreach %s", (kernel, profile, foreach) => {
    test.skipIf(skip)(`applyGradients over 3 variables for 12 steps equals the spec bit for bit, params and state${reason}`, async () => {
      await use();
      // the third variable skips odd steps: on the foreach path its scalars then differ from the others'
      const shapes = [[3, 4], [5], []];
      const inits = shapes.map((s, i) => gradValues(s.reduce((a, b) => a * b, 1), 99, i));
      const variables = shapes.map((s, i) => tf.variable(tf.tensor(inits[i]!, s, "float32")));
      const optimizer = await nadam({ ...CONFIG, foreach, profile, kernel }).ready();
      let data = inits.map((v) => v.map(Math.fround));
      let state: (NadamParamState | undefined)[] = shapes.map(() => undefined);
      for (let k = 0; k < 12; k++) {
        // the last variable has no grad on odd steps: it keeps its value and its step count
        const grads = shapes.map((s, i) => (i === 2 && k % 2 === 1 ? null : gradValues(s.reduce((a, b) => a * b, 1), k, i)));
        optimizer.applyGradients(Object.fromEntries(variables.flatMap((v, i) => (grads[i] === null ? [] : [[v.name, tf.tensor(grads[i]!, shapes[i], "float32")]]))));
        const result = nadamStep(
          data.map((d, i) => ({ dtype: "float32" as const, data: d, grad: grads[i]! })),
          state,
          hyperOf(CONFIG),
          { path: foreach ? "foreach" : "forloop", profile },
        );
        data = result.data;
        state = result.state;
      }
      for (const [i, v] of variables.entries()) {
        const got = [...(await v.data())];
        expect(got.every((x, e) => sameValue("float32", data[i]![e]!, x)), `variable ${i}: ${got} vs ${data[i]}`).toBe(true);
      }
      const sd = await optimizer.stateDict(variables);
      for (const [i] of variables.entries()) {
        const entry = sd.state[i]!;
        const want = state[i]!;
        expect((entry.step as { item(): number }).item()).toBe(want.step);
        expect((entry.mu_product as { item(): number }).item()).toBe(want.mu_product);
        const expAvg = (entry.exp_avg as { toArray(): number[] }).toArray();
        expect(expAvg.every((x, e) => sameValue("float32", want.exp_avg[e]!, x))).toBe(true);
      }
      optimizer.dispose();
      tf.dispose(variables);
    });
  });

  test.skipIf(skip)(`100 steps read nothing back and leak no tensor${reason}`, async () => {
    await use();
    const a = tf.variable(tf.randomNormal([64, 8], 0, 1, "float32", 1));
    const b = tf.variable(tf.randomNormal([8], 0, 1, "float32", 2));
    const x = tf.randomNormal([16, 64], 0, 1, "float32", 3);
    for (const foreach of [false, true]) {
      const optimizer = nadam({ learningRate: 1e-2, weightDecay: 0.01, foreach });
      const loss = () => tf.mean(tf.square(tf.add(tf.matMul(x, a), b))) as tf.Scalar;
      const first = optimizer.minimize(loss, true, [a, b])!; // the first step makes the moments
      const initial = (await first.data())[0]!;
      first.dispose();
      const before = tf.memory().numTensors;
      const reads = await countReads(() => {
        for (let k = 0; k < 100; k++) optimizer.minimize(loss, false, [a, b]);
      });
      expect(reads).toBe(0);
      expect(tf.memory().numTensors).toBe(before);
      // and training trained
      const last = loss();
      expect((await last.data())[0]!).toBeLessThan(initial / 2);
      last.dispose();
      optimizer.dispose();
    }
    tf.dispose([a, b, x]);
  });

  test.skipIf(skip)(`getWeights / setWeights and stateDict / loadStateDict resume a run bit for bit${reason}`, async () => {
    await use();
    const init = gradValues(6, 7, 0);
    const run = async (resume: "none" | "weights" | "state-dict") => {
      const v = tf.variable(tf.tensor(init, [2, 3], "float32"));
      let optimizer = nadam(CONFIG);
      const step = (k: number) => optimizer.applyGradients({ [v.name]: tf.tensor(gradValues(6, k, 1), [2, 3], "float32") });
      for (let k = 0; k < 5; k++) step(k);
      if (resume === "weights") {
        const weights = await optimizer.getWeights();
        expect(weights.map((w) => w.name)).toEqual(["iter", `${v.name}/step`, `${v.name}/mu_product`, `${v.name}/exp_avg`, `${v.name}/exp_avg_sq`]);
        const next = nadam(CONFIG);
        await next.setWeights(weights);
        optimizer = next;
      } else if (resume === "state-dict") {
        const sd = await optimizer.stateDict([v]);
        expect(sd.param_groups[0]).toMatchObject({ lr: 0.01, betas: [0.9, 0.999], momentum_decay: 4e-3, params: [0] });
        const next = nadam(CONFIG);
        next.loadStateDict(sd, [v]);
        optimizer = next;
      }
      for (let k = 5; k < 10; k++) step(k);
      return [...(await v.data())];
    };
    const straight = await run("none");
    expect(await run("weights")).toEqual(straight);
    expect(await run("state-dict")).toEqual(straight);
  });

  test.skipIf(skip)(`registered for serialization: fromConfig(getConfig()) is the same optimizer${reason}`, async () => {
    await use();
    const optimizer = nadam({ ...CONFIG, foreach: false, profile: "default" });
    const registered = tf.serialization.SerializationMap.getMap().classNameMap.NadamOptimizer;
    expect(registered?.[0]).toBe(NadamOptimizer);
    const copy = NadamOptimizer.fromConfig(NadamOptimizer, optimizer.getConfig()) as NadamOptimizer;
    expect(copy.getConfig()).toEqual(optimizer.getConfig());
    expect(copy).toBeInstanceOf(tf.Optimizer);
  });

  test.skipIf(skip)(`differentiable: tf.grad through a step equals finite differences of the spec in float64${reason}`, async () => {
    await use();
    // L(θ) = Σ θ'², θ' = one NAdam step from θ with the gradient of ½Σθ² (so g = θ), the for-loop path's
    // differentiable branch; the spec runs the step in float64 for the finite differences.
    const hyper: NadamHyperParameters = { ...NADAM_DEFAULTS, lr: 0.1, weight_decay: 0.05, differentiable: true };
    const theta = [0.5, -1.25, 2, 0.75];
    const before = { step: 0, step_dtype: "float32" as const, mu_product: 1, mu_product_dtype: "float32" as const };
    const scalars = stepScalars(hyper, "forloop", before);
    const loss = (t: tf.Tensor) => {
      const out = nadamUpdate(tf, { param: t, expAvg: tf.zerosLike(t), expAvgSq: tf.zerosLike(t) }, t, hyper, scalars, "forloop", null);
      return tf.sum(tf.square(out.param)) as tf.Scalar;
    };
    const grad = await tf.grad(loss)(tf.tensor(theta, [4], "float32")).data();
    const specLoss = (t: number[]) => nadamStep([{ dtype: "float64", data: t, grad: t }], [undefined], hyper, { path: "forloop", profile: "default" }).data[0]!.reduce((s, x) => s + x * x, 0);
    const h = 1e-6;
    theta.forEach((_, i) => {
      const up = theta.map((x, j) => (j === i ? x + h : x));
      const down = theta.map((x, j) => (j === i ? x - h : x));
      const fd = (specLoss(up) - specLoss(down)) / (2 * h);
      expect(Math.abs(grad[i]! - fd)).toBeLessThan(1e-4 * Math.max(1, Math.abs(fd)));
    });
  });
});

test("the tfjs NAdam follows the CPU's profiles and refuses `cuda` by name", () => {
  expect(() => nadam({ profile: "cuda" })).toThrow(new TypeError('the tfjs backend follows the default and vectorized profiles, not "cuda"'));
  expect(nadam({ profile: "vectorized" }).getConfig()).toMatchObject({ profile: "vectorized" });
});
