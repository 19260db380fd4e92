/**
 * The oracle on hand-checked vectors: torch 2.6.0 (Debian), CPU, from
 * ../shared/reference/torch-nadam.md Appendix A (p0, three grads, four float32
 * elements), both rounding profiles. The golden corpus covers far more; these
 * pin the formula with numbers a reader can follow.
 */
import { describe, expect, test } from "vitest";
import { f32Hex, f64Hex } from "../float/bits.ts";
import { NADAM_DEFAULTS } from "./defaults.ts";
import { initialState, nadamStep, type NadamHyperParameters, type NadamParamState, type StepConfig } from "./step.ts";
import type { DType } from "../float/dtype.ts";

const P0 = [0.5, -1.25, 3.0, 1e-3];
const GRADS = [
  [0.1, -0.2, 0.3, 0.0],
  [0.05, 0.4, -0.6, 1e-4],
  [-0.3, 0.1, 0.2, -2.0],
];

function run(dtype: DType, hyper: Partial<NadamHyperParameters>, config: StepConfig, grads = GRADS) {
  const round = dtype === "float32" ? Math.fround : (x: number) => x;
  const hex = dtype === "float32" ? f32Hex : f64Hex;
  let data = P0.map(round);
  let state: (NadamParamState | undefined)[] = [undefined];
  const params: string[] = [];
  for (const g of grads) {
    const result = nadamStep([{ dtype, data, grad: g.map(round) }], state, { ...NADAM_DEFAULTS, ...hyper }, config);
    data = result.data[0]!;
    state = result.state;
    params.push(data.map(hex).join(" "));
  }
  const s = state[0]!;
  return { params, exp_avg: s.exp_avg.map(hex).join(" "), exp_avg_sq: s.exp_avg_sq.map(hex).join(" "), mu_product: f32Hex(s.mu_product), step: s.step };
}

const vectorized: StepConfig = { path: "forloop", profile: "vectorized" };
const noAvx: StepConfig = { path: "forloop", profile: "default" };

describe("torch 2.6 Appendix A vectors", () => {
  test("A: defaults, for-loop, vectorized (AVX2/AVX512)", () => {
    expect(run("float32", {}, vectorized)).toEqual({
      params: ["3efeeb0f bf9fbac4 403fdd61 3a83126f", "3efe61b7 bf9ff62d 403ffb16 ba8ed31c", "3eff6e95 bfa008a0 403ff1a6 3a990729"],
      exp_avg: "bc8e8a72 3cf41f22 bc1eecbe be4cca71",
      exp_avg_sq: "38d6e933 395bf309 3a004f1d 3b83126f",
      mu_product: "3dbace8e",
      step: 3,
    });
  });

  test("A: the NO AVX profile rounds lerp and addcmul unfused", () => {
    const r = run("float32", {}, noAvx);
    expect(r.exp_avg).toBe("bc8e8a73 3cf41f22 bc1eecbe be4cca71");
    expect(r.exp_avg_sq).toBe("38d6e933 395bf30a 3a004f1d 3b83126f");
  });

  test("D: maximize with L2 weight decay, both profiles", () => {
    const hyper = { maximize: true, weight_decay: 0.1 };
    expect(run("float32", hyper, vectorized).params[2]).toBe("3f0000ed bf9fe152 403fe613 bac92876");
    expect(run("float32", hyper, noAvx).params[2]).toBe("3f0000ed bf9fe152 403fd74c bac92875");
  });

  test("G: float64 params keep a float32 mu_product", () => {
    const r = run("float64", {}, vectorized);
    expect(r.params[2]).toBe("3fdfedd2b18ff6ed bff4011421ce8a9e 4007fe34b4e13b3f 3f5320e560336b0e");
    expect(r.mu_product).toBe("3dbace8e");
  });

  test("H: a 0-d tensor lr takes float32 step sizes on the for-loop path", () => {
    expect(run("float32", { lr: Math.fround(2e-3), lr_is_tensor: true }, vectorized).params[2]).toBe("3eff6e95 bfa008a0 403ff1a6 3a990729");
  });

  test("I: the foreach path's denominator rounds differently", () => {
    const r = run("float32", {}, { path: "foreach", profile: "vectorized" });
    expect(r.params[1]).toBe("3efe61b8 bf9ff62d 403ffb16 ba8ed31c");
    expect(r.params[2]).toBe("3eff6e96 bfa008a0 403ff1a6 3a990729");
  });

  test("F: eps = 0 and a zero grad give NaN (0/0), even though the other elements are fine", () => {
    const r = run("float32", { eps: 0 }, vectorized);
    expect(r.params[2]!.split(" ").slice(0, 3).join(" ")).toBe("3eff6e95 bfa008a0 403ff1a6");
    // NaN bits are not modelled (torch wrote ffc00000, x86's default NaN); NaN itself is.
    expect(Number.isNaN(new DataView(Uint32Array.of(parseInt(r.params[2]!.split(" ")[3]!, 16)).buffer).getFloat32(0, true))).toBe(true);
  });
});

describe("state behaviour", () => {
  const oneElement = (steps: number, hyper: Partial<NadamHyperParameters> = {}, start?: NadamParamState) => {
    let state: (NadamParamState | undefined)[] = [start];
    let data = [Math.fround(0.5)];
    for (let i = 0; i < steps; i++) {
      const r = nadamStep([{ dtype: "float32", data, grad: [Math.fround(0.1)] }], state, { ...NADAM_DEFAULTS, ...hyper }, vectorized);
      data = r.data[0]!;
      state = r.state;
    }
    return { data, state: state[0]! };
  };

  test("float32 mu_product is subnormal from step 111 and exactly 0 from step 132", () => {
    expect(oneElement(110).state.mu_product).toBeGreaterThanOrEqual(2 ** -126);
    expect(oneElement(111).state.mu_product).toBeLessThan(2 ** -126);
    expect(oneElement(131).state.mu_product).toBeGreaterThan(0);
    expect(oneElement(132).state.mu_product).toBe(0);
  });

  test("a float32 step saturates at 2^24", () => {
    const start = { ...initialState("float32", 1), step: 2 ** 24 - 1 };
    expect(oneElement(3, {}, start).state.step).toBe(2 ** 24);
  });

  test("lr = 0 leaves params bit-identical while the state advances", () => {
    const r = oneElement(5, { lr: 0 });
    expect(r.data).toEqual([Math.fround(0.5)]);
    expect(r.state.step).toBe(5);
  });

  test("a param without grad keeps its data and has no state", () => {
    const r = nadamStep([{ dtype: "float32", data: [1], grad: null }], [undefined], NADAM_DEFAULTS, vectorized);
    expect(r.data).toEqual([[1]]);
    expect(r.state).toEqual([undefined]);
  });

  test("torch 1.13's for-loop formula differs from torch 2's", () => {
    const hyper = { ...NADAM_DEFAULTS };
    const step = (formula: "torch-2" | "torch-1.13") =>
      nadamStep([{ dtype: "float32", data: [0.5], grad: [0.1] }], [undefined], hyper, { ...vectorized, formula }).data[0]![0];
    expect(step("torch-1.13")).not.toBe(step("torch-2"));
  });

  test("mismatched grad length is an error naming the param", () => {
    expect(() => nadamStep([{ dtype: "float32", data: [1, 2], grad: [1] }], [undefined], NADAM_DEFAULTS, vectorized)).toThrow(/param 0: grad has 1 elements, param has 2/);
  });
});
