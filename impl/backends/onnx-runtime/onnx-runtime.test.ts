/**
 * The ONNX Runtime backend's own claims (the property tests and the golden
 * corpus check its results against the spec): its fma emulation, the ORT
 * quirk it works around, valid models, session reuse, state left in place on
 * the CPU and on the device between steps.
 */
import { describe, expect, test } from "vitest";
import { fmaExact } from "../../../spec/float/fma.ts";
import { FORMATS } from "../../../spec/float/format.ts";
import { Tensor } from "../../../tensor/tensor.ts";
import { RandomFloats } from "../../../test/support/random-floats.ts";
import { NAdam } from "../../core/nadam.ts";
import { typedArrayBackend } from "../typed-array/index.ts";
import type { OnnxRuntimeBackend } from "./backend.ts";
import { sessionCount } from "./backend.ts";
import { fmaGraph, stepGraph, type StepGraphSignature } from "./graph.ts";
import { onnxRuntimeCpu, onnxRuntimeWebgpu } from "./index.ts";
import { encodeModel, ONNX_IR_VERSION, ONNX_OPSET } from "./onnx.ts";
import { loadOrt, type OrtModule } from "./ort.ts";

const loaded = await loadOrt();
const ort = loaded instanceof Error ? null : loaded;
const cpu = await onnxRuntimeCpu.availability();
const webgpu = await onnxRuntimeWebgpu.availability();
const why = (a: { available: boolean; reason?: string }) => (a.available ? "" : ` — skipped: ${a.reason}`);
const PRODUCER = { name: "test", version: "0" };

async function runFma(o: OrtModule, dtype: "float32" | "float64", x: Float32Array | Float64Array, y: typeof x, z: typeof x): Promise<Float32Array | Float64Array> {
  const session = await o.InferenceSession.create(encodeModel(fmaGraph(dtype), PRODUCER), { executionProviders: ["cpu"], graphOptimizationLevel: "disabled" });
  const n = [x.length];
  const { out } = await session.run({ x: new o.Tensor(dtype, x, n), y: new o.Tensor(dtype, y, n), z: new o.Tensor(dtype, z, n) });
  await session.release();
  return out!.data as Float32Array | Float64Array;
}

describe("the fma emulation of the vectorized profile's graphs, on ONNX Runtime's CPU provider", () => {
  test.skipIf(!cpu.available)(`float64: 200,000 triples (random, near cancellation, tiny products, subnormal sums, signed zeros) = exact fma${why(cpu)}`, async () => {
    const rng = new RandomFloats(21);
    const n = 200_000;
    const [x, y, z] = [new Float64Array(n), new Float64Array(n), new Float64Array(n)];
    for (let i = 0; i < n; i++) {
      x[i] = rng.float64();
      y[i] = rng.float64();
      switch (i % 6) {
        case 0: z[i] = rng.float64(); break;
        case 1: z[i] = -x[i]! * y[i]! * (1 + rng.unit() * 2 ** -45); break; // near cancellation
        case 2: x[i]! *= 2 ** -500; y[i]! *= 2 ** -480; z[i] = rng.float64() * 2 ** -1000; break; // all tiny: subnormal results
        case 3: x[i]! *= 2 ** -600; y[i]! *= 2 ** -400; z[i] = rng.float64(); break; // a product under half an ulp of z
        case 4: x[i]! *= 2 ** -540; y[i]! *= 2 ** -540; z[i] = rng.float64() * 2 ** -1060; break; // underflowing products
        default: [x[i], y[i], z[i]] = [[0, -0][i % 2]!, rng.float64(), [0, -0, 1e-310, -1e-310][rng.int(0, 3)]!];
      }
    }
    const out = await runFma(ort!, "float64", x, y, z);
    const wrong: string[] = [];
    for (let i = 0; i < n && wrong.length < 5; i++) {
      const want = fmaExact(x[i]!, y[i]!, z[i]!, FORMATS.float64);
      if (!Object.is(out[i], want)) wrong.push(`fma(${x[i]}, ${y[i]}, ${z[i]}) = ${out[i]}, exact ${want}`);
    }
    expect(wrong).toEqual([]);
  });

  test.skipIf(!cpu.available)(`float32: 200,000 triples and the double-rounding traps = exact fma${why(cpu)}`, async () => {
    const rng = new RandomFloats(22);
    const triples: [number, number, number][] = [];
    // a·b = 2^-24 + r·2^-71 beside 1: the float64 sum lands on a float32 midpoint
    for (let A = 2 ** 23 + 1; triples.length < 400 && A < 2 ** 24; A++) {
      const B = Math.ceil(2 ** 47 / A);
      const r = A * B - 2 ** 47;
      if (B >= 2 ** 24 || r <= 0 || r >= 2 ** 18) continue;
      triples.push([A * 2 ** -23, B * 2 ** -48, 1], [-A * 2 ** -23, B * 2 ** -48, -1]);
    }
    while (triples.length < 200_000) {
      const a = rng.float32();
      const b = rng.float32();
      const k = triples.length % 4;
      triples.push([a, b, k === 0 ? rng.float32() : k === 1 ? Math.fround(-a * b * (1 + rng.unit() * 2 ** -22)) : k === 2 ? Math.fround(rng.float32(-140, -120)) : [0, -0][k % 2]!]);
    }
    const [x, y, z] = [0, 1, 2].map((j) => Float32Array.from(triples, (t) => t[j]!)) as [Float32Array, Float32Array, Float32Array];
    const out = await runFma(ort!, "float32", x, y, z);
    const wrong: string[] = [];
    for (let i = 0; i < x.length && wrong.length < 5; i++) {
      const want = fmaExact(x[i]!, y[i]!, z[i]!, FORMATS.float32);
      if (!Object.is(out[i], want)) wrong.push(`fma(${x[i]}, ${y[i]}, ${z[i]}) = ${out[i]}, exact ${want}`);
    }
    expect(wrong).toEqual([]);
  });

  test.skipIf(!cpu.available)(`ONNX Runtime's CPU Where turns a -0 taken from its first branch into +0 (why the graphs restore signs)${why(cpu)}`, async () => {
    const v = (name: string) => ({ name, type: "float64" as const, shape: [2] });
    const graph = { name: "where", inputs: [{ name: "c", type: "bool" as const, shape: [2] }, v("a"), v("b")], outputs: [v("out")], nodes: [{ op: "Where", inputs: ["c", "a", "b"], outputs: ["out"] }] };
    const session = await ort!.InferenceSession.create(encodeModel(graph, PRODUCER), { executionProviders: ["cpu"] });
    const { out } = await session.run({ c: new ort!.Tensor("bool", Uint8Array.of(1, 0), [2]), a: new ort!.Tensor("float64", Float64Array.of(-0, 5), [2]), b: new ort!.Tensor("float64", Float64Array.of(7, -0), [2]) });
    // If this starts failing, ONNX Runtime changed its Where: the sign fix-up (graph.ts signedWhere) may be dropped.
    expect(Object.is((out!.data as Float64Array)[0], 0)).toBe(true);
    await session.release();
  });
});

describe("the step graphs are valid ONNX", () => {
  const signatures: StepGraphSignature[] = [];
  for (const path of ["forloop", "foreach"] as const)
    for (const dtype of ["float32", "float64"] as const)
      for (const profile of ["default", "vectorized"] as const)
        for (const weightDecay of ["none", "l2", "decoupled"] as const)
          signatures.push({ path, dtype, profile, params: path === "foreach" ? 3 : 1, maximize: weightDecay === "l2", weightDecay, lerp: weightDecay === "decoupled" ? "large-weight" : "small-weight" });

  test("the model bytes declare ONNX's IR version and opset, and name every input and output", () => {
    const bytes = encodeModel(stepGraph(signatures[0]!), PRODUCER);
    // ModelProto field 1 (ir_version, varint) comes first; opset_import (field 8) carries the version
    expect([bytes[0], bytes[1]]).toEqual([0x08, ONNX_IR_VERSION]);
    expect(Buffer.from(bytes).includes(Buffer.from([0x10, ONNX_OPSET]))).toBe(true);
    expect(() => encodeModel({ ...stepGraph(signatures[0]!), outputs: [{ name: "missing", type: "float32", shape: [] }] }, PRODUCER)).toThrow(/missing is never computed/);
  });

  test.skipIf(!cpu.available)(`all ${signatures.length} signatures load back into ONNX Runtime with the inputs and outputs they declare${why(cpu)}`, async () => {
    for (const sig of signatures) {
      const graph = stepGraph(sig);
      const session = await ort!.InferenceSession.create(encodeModel(graph, PRODUCER), { executionProviders: ["cpu"] });
      expect([...session.inputNames].sort()).toEqual(graph.inputs.map((v) => v.name).sort());
      expect([...session.outputNames]).toEqual(graph.outputs.map((v) => v.name));
      await session.release();
    }
  });
});

function params(count: number, numel: number, dtype: "float32" | "float64" = "float32"): Tensor[] {
  return Array.from({ length: count }, (_, i) => Tensor.from(Array.from({ length: numel }, (_, k) => Math.sin(i * numel + k)), dtype));
}

function setGrads(ps: readonly Tensor[], step: number): void {
  for (const [i, p] of ps.entries()) p.grad = Tensor.from(p.toArray().map((_, k) => Math.cos(step + i + k)), p.dtype, p.shape);
}

/** The same steps (setGrads 0..steps) through the typed-array backend, which the property tests pin to the spec. */
async function sameStepsOnTypedArray(count: number, numel: number, profile: "default" | "vectorized", steps: number, weight_decay = 0) {
  const ps = params(count, numel);
  const optimizer = new NAdam(ps, { foreach: true, weight_decay }, { backend: typedArrayBackend({ profile }) });
  for (let k = 0; k <= steps; k++) {
    setGrads(ps, k);
    optimizer.step();
  }
  const state = optimizer.stateDict().state;
  return { params: ps.map((p) => p.toArray()), expAvgSq: ps.map((_, i) => (state[i]!.exp_avg_sq as Tensor).toArray()) };
}

describe("ONNX Runtime's CPU provider", () => {
  test.skipIf(!cpu.available)(`state is updated in place: the same memory across steps and in stateDict(), no copies; one session per signature${why(cpu)}`, async () => {
    const ps = params(4, 10);
    const backend = (await onnxRuntimeCpu.create({ profile: "vectorized" })) as OnnxRuntimeBackend;
    const optimizer = new NAdam(ps, { foreach: true, weight_decay: 0.01 }, { backend });
    setGrads(ps, 0);
    await optimizer.stepAsync();
    const first = (await optimizer.stateDictAsync()).state;
    const sessions = sessionCount();
    const storage = ps.map((p) => p.data);
    for (let k = 1; k <= 20; k++) {
      setGrads(ps, k);
      await optimizer.stepAsync();
    }
    const last = (await optimizer.stateDictAsync()).state;
    expect(sessionCount()).toBe(sessions);
    expect(backend.runs).toBe(21); // foreach: one run per group and dtype
    for (let i = 0; i < ps.length; i++) {
      expect(ps[i]!.data).toBe(storage[i]); // params updated in their own storage
      expect((last[i]!.exp_avg as Tensor).data).toBe((first[i]!.exp_avg as Tensor).data); // state tensors alias ORT's, live
      expect((last[i]!.exp_avg_sq as Tensor).data).toBe((first[i]!.exp_avg_sq as Tensor).data);
      expect((last[i]!.step as Tensor).item()).toBe(21);
    }
    expect(backend.transfers).toEqual({ uploads: 0, downloads: 0 });
    // the group stepped as one concatenated vector, split back into each param's memory: the spec's bits
    const reference = await sameStepsOnTypedArray(4, 10, "vectorized", 20, 0.01);
    expect(ps.map((p) => p.toArray())).toEqual(reference.params);
  });

  test.skipIf(!cpu.available)(`the for-loop path runs once per param, foreach once per group and dtype${why(cpu)}`, async () => {
    for (const [foreach, runs] of [[false, 5], [true, 2]] as const) {
      const ps = [...params(3, 7, "float32"), ...params(2, 5, "float64")];
      const backend = (await onnxRuntimeCpu.create({ profile: "default" })) as OnnxRuntimeBackend;
      const optimizer = new NAdam(ps, { foreach }, { backend });
      setGrads(ps, 1);
      await optimizer.stepAsync();
      expect(backend.runs).toBe(runs);
    }
  });
});

describe("ONNX Runtime's WebGPU provider", () => {
  test.skipIf(!webgpu.available)(`exp_avg and exp_avg_sq stay on the device: a step copies param and grad up and the param down, nothing else${why(webgpu)}`, async () => {
    const ps = params(100, 10);
    const backend = (await onnxRuntimeWebgpu.create({ profile: "default" })) as OnnxRuntimeBackend;
    const optimizer = new NAdam(ps, { foreach: true }, { backend });
    setGrads(ps, 0);
    await optimizer.stepAsync(); // the zero state is uploaded once, with the first step
    expect(backend.transfers).toEqual({ uploads: 400, downloads: 100 });
    for (let k = 1; k <= 10; k++) {
      setGrads(ps, k);
      await optimizer.stepAsync();
    }
    expect(backend.transfers).toEqual({ uploads: 400 + 10 * 200, downloads: 100 + 10 * 100 });
    expect(backend.runs).toBe(11);
    const state = (await optimizer.stateDictAsync()).state;
    expect(backend.transfers.downloads).toBe(1100 + 200); // state read back for the state dict only
    // 100 params joined by a tree of Concats and cut out again by Slices (a shader binds at most 16 buffers): the spec's bits
    const reference = await sameStepsOnTypedArray(100, 10, "default", 10);
    expect(ps.map((p) => p.toArray())).toEqual(reference.params);
    expect(ps.map((_, i) => (state[i]!.exp_avg_sq as Tensor).toArray())).toEqual(reference.expAvgSq);
  });
});
