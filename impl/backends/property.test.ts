/**
 * Property: for random options, group layouts, shapes, dtypes, grads, step
 * counts and starting states (fresh, or loaded at any step count up to 10^6),
 * the NAdam API over every registered backend equals the spec bit for bit, on
 * each code path and under each rounding profile the backend claims (1,000
 * runs each). A backend added to the registry is tested here with no edit.
 */
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { sameValue } from "../../golden/compare.ts";
import { componentsOf, DTYPE, type DType } from "../../spec/float/dtype.ts";
import { glibcPow } from "../../spec/float/pow.ts";
import { roundToFormat } from "../../spec/float/format.ts";
import { NADAM_DEFAULTS } from "../../spec/nadam/defaults.ts";
import { castStateOnLoad } from "../../spec/nadam/load-state.ts";
import { nadamStep, type NadamHyperParameters, type NadamParamState } from "../../spec/nadam/step.ts";
import type { CodePath, RoundingProfile } from "../../spec/nadam/types.ts";
import type { BackendEntry } from "../backend.ts";
import { NAdam, Tensor, type StateDict } from "../index.ts";
import { BACKENDS } from "./index.ts";

const RUNS = 1000;

/** A state a run starts from, loaded through loadStateDict (as a resumed run would). */
interface StartState {
  step: number;
  muProduct: number;
  expAvg: number[];
  expAvgSq: number[];
}

interface Scenario {
  dtype: DType;
  defaultDtype: "float32" | "float64";
  groups: { hyper: NadamHyperParameters; shapes: number[][] }[];
  /** per step, per param (flattened over groups): grad values or null */
  steps: (number[] | null)[][];
  inits: number[][];
  /** per param: null for a fresh start */
  starts: (StartState | null)[];
}

const value = fc.oneof(
  { weight: 8, arbitrary: fc.double({ min: -2, max: 2, noNaN: true }) },
  { weight: 1, arbitrary: fc.constantFrom(0, -0, 1e-30, -1e-30, 3e-39, 1e4, -1e4) },
);

const shape = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 3 }) },
  { weight: 1, arbitrary: fc.integer({ min: 17, max: 70 }).map((n) => [n]) }, // across PyTorch's vector blocks
  { weight: 1, arbitrary: fc.constant([0]) },
);

function hyperFor(entry: BackendEntry): fc.Arbitrary<NadamHyperParameters> {
  const has = (feature: "tensor-lr" | "differentiable") => entry.supports.features.includes(feature);
  return fc
    .record({
      lr: fc.oneof(fc.double({ min: 0, max: 0.1, noNaN: true }), fc.constantFrom(0, 2e-3, 1e-3)),
      lr_is_tensor: has("tensor-lr") ? fc.boolean() : fc.constant(false),
      betas: fc.tuple(fc.oneof(fc.double({ min: 0, max: 0.99, noNaN: true }), fc.constantFrom(0, 0.5, 0.9)), fc.oneof(fc.double({ min: 0, max: 0.9999, noNaN: true }), fc.constantFrom(0, 0.999))),
      eps: fc.constantFrom(0, 1e-8, 1e-6, 1e-3),
      weight_decay: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 0.2, noNaN: true })),
      momentum_decay: fc.oneof(fc.constantFrom(0, 4e-3), fc.double({ min: 0, max: 0.02, noNaN: true })),
      decoupled_weight_decay: fc.boolean(),
      maximize: fc.boolean(),
      differentiable: has("differentiable") ? fc.boolean() : fc.constant(false),
    })
    .map((h) => ({ ...h, lr: h.lr_is_tensor ? Math.fround(h.lr) : h.lr }));
}

function startFor(n: number): fc.Arbitrary<StartState | null> {
  const start = fc.record({
    // Up to 10^6: (t+1)·ψ and t·ψ + ψ give different mu_{t+1} from t ≈ 959 (default ψ).
    step: fc.oneof(fc.integer({ min: 1, max: 2000 }), fc.integer({ min: 0, max: 1_000_000 })),
    muProduct: fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.constant(0)),
    expAvg: fc.array(value, { minLength: n, maxLength: n }),
    expAvgSq: fc.array(value.map(Math.abs), { minLength: n, maxLength: n }),
  });
  return fc.option(start, { freq: 3, nil: null });
}

function scenarioFor(entry: BackendEntry): fc.Arbitrary<Scenario> {
  return fc
    .record({
      dtype: fc.constantFrom(...entry.supports.dtypes),
      defaultDtype: fc.constantFrom("float32" as const, "float64" as const),
      groups: fc.array(fc.record({ hyper: hyperFor(entry), shapes: fc.array(shape, { minLength: 1, maxLength: 3 }) }), { minLength: 1, maxLength: 3 }),
      stepCount: fc.integer({ min: 1, max: 5 }),
    })
    .chain(({ dtype, defaultDtype, groups, stepCount }) => {
      // numbers per param: a complex param's are its (real, imaginary) pairs
      const sizes = groups.flatMap((g) => g.shapes.map((s) => s.reduce((a, b) => a * b, 1) * componentsOf(dtype)));
      const grad = (n: number) => fc.option(fc.array(value, { minLength: n, maxLength: n }), { freq: 6, nil: null });
      return fc.record({
        dtype: fc.constant(dtype),
        defaultDtype: fc.constant(defaultDtype),
        groups: fc.constant(groups),
        inits: fc.tuple(...sizes.map((n) => fc.array(value, { minLength: n, maxLength: n }))),
        steps: fc.array(fc.tuple(...sizes.map(grad)), { minLength: stepCount, maxLength: stepCount }),
        starts: fc.tuple(...sizes.map(startFor)),
      });
    });
}

function groupOptions(h: NadamHyperParameters): Record<string, unknown> {
  return { ...h, lr: h.lr_is_tensor ? Tensor.scalar(h.lr, "float32") : h.lr, betas: [...h.betas], lr_is_tensor: undefined };
}

/** The loaded start states as a state dict, and the spec's view of them after load_state_dict's casts. */
async function loadedStart(s: Scenario, optimizer: NAdam, params: Tensor[]): Promise<(NadamParamState | undefined)[]> {
  const stateDict: StateDict = await optimizer.stateDictAsync();
  const specState: (NadamParamState | undefined)[] = params.map(() => undefined);
  params.forEach((p, i) => {
    const start = s.starts[i];
    if (!start) return;
    const step = Tensor.scalar(start.step, s.defaultDtype);
    const muProduct = Tensor.scalar(start.muProduct, s.defaultDtype);
    const expAvg = Tensor.from(start.expAvg, s.dtype, p.shape);
    const expAvgSq = Tensor.from(start.expAvgSq, s.dtype, p.shape);
    stateDict.state[i] = { step, mu_product: muProduct, exp_avg: expAvg, exp_avg_sq: expAvgSq };
    specState[i] = castStateOnLoad(
      { step: step.item(), step_dtype: s.defaultDtype, mu_product: muProduct.item(), mu_product_dtype: s.defaultDtype, exp_avg: expAvg.toArray(), exp_avg_sq: expAvgSq.toArray() },
      s.dtype,
    );
  });
  optimizer.loadStateDict(stateDict);
  return specState;
}

/** Runs a scenario through the API and through the spec; returns the first difference, or null. */
async function firstDifference(entry: BackendEntry, scenario: Scenario, path: CodePath, profile: RoundingProfile): Promise<string | null> {
  // foreach refuses differentiable groups (PyTorch asserts); the for-loop path takes its own branch.
  const s = path === "foreach" ? { ...scenario, groups: scenario.groups.map((g) => ({ ...g, hyper: { ...g.hyper, differentiable: false } })) } : scenario;
  const shapes = s.groups.flatMap((g) => g.shapes);
  const params = shapes.map((sh, i) => Tensor.from(s.inits[i]!, s.dtype, sh));
  let id = 0;
  const groupIds = s.groups.map((g) => g.shapes.map(() => id++));
  const backend = await entry.create({ profile });
  const optimizer = new NAdam(
    s.groups.map((g, k) => ({ params: groupIds[k]!.map((i) => params[i]!), ...groupOptions(g.hyper) })),
    { foreach: path === "foreach" },
    { backend, defaultDtype: s.defaultDtype },
  );
  // The spec's view: exact dtype values, state carried by hand.
  const data = params.map((p) => p.toArray());
  const state = await loadedStart(s, optimizer, params);

  for (const [k, grads] of s.steps.entries()) {
    params.forEach((p, i) => {
      p.grad = grads[i] === null ? null : Tensor.from(grads[i]!, s.dtype, p.shape);
    });
    await optimizer.stepAsync();
    s.groups.forEach((g, gi) => {
      const ids = groupIds[gi]!;
      const result = nadamStep(
        ids.map((i) => ({ dtype: s.dtype, data: data[i]!, grad: params[i]!.grad?.toArray() ?? null })),
        ids.map((i) => state[i]),
        { ...NADAM_DEFAULTS, ...g.hyper },
        { path, profile, scalarStateDtype: s.defaultDtype },
      );
      ids.forEach((i, j) => {
        data[i] = result.data[j]!;
        state[i] = result.state[j];
      });
    });
    const hostState = (await optimizer.stateDictAsync()).state;
    for (const [i, p] of params.entries()) {
      const actual = p.toArray();
      const bad = actual.findIndex((x, e) => !sameValue(s.dtype, data[i]![e]!, x));
      if (bad >= 0) return `step ${k + 1}, param ${i}[${bad}]: API ${actual[bad]}, spec ${data[i]![bad]}`;
      const st = hostState[i];
      const expected = state[i];
      if ((st === undefined) !== (expected === undefined)) return `step ${k + 1}, param ${i}: state presence differs`;
      if (st === undefined || expected === undefined) continue;
      const entries: [string, DType, number[], readonly number[]][] = [
        ["step", expected.step_dtype, (st.step as Tensor).toArray(), [expected.step]],
        ["mu_product", expected.mu_product_dtype, (st.mu_product as Tensor).toArray(), [expected.mu_product]],
        ["exp_avg", s.dtype, (st.exp_avg as Tensor).toArray(), expected.exp_avg],
        ["exp_avg_sq", s.dtype, (st.exp_avg_sq as Tensor).toArray(), expected.exp_avg_sq],
      ];
      for (const [name, dtype, got, want] of entries) {
        const e = got.findIndex((x, j) => !sameValue(dtype, want[j]!, x));
        if (e >= 0 || got.length !== want.length) return `step ${k + 1}, param ${i} ${name}[${e}]: API ${got[e]}, spec ${want[e]}`;
      }
    }
  }
  await backend.dispose?.();
  return null;
}

/** The same run through the API and the spec from a loaded state at step `from`; the first difference, or null. */
async function longRun(entry: BackendEntry, path: CodePath, profile: RoundingProfile, from: number, steps: number): Promise<string | null> {
  // A float64 param at 0 with zero grads and a non-zero exp_avg: each step's change
  // is the exp_avg term alone, so every bit of its step size (mu_{t+1}) shows
  // (as many bits as the dtype holds, for a backend without float64).
  const scenario: Scenario = {
    dtype: entry.supports.dtypes.includes("float64") ? "float64" : entry.supports.dtypes[0]!,
    defaultDtype: "float64",
    groups: [{ hyper: { ...NADAM_DEFAULTS, lr: 1 }, shapes: [[3]] }],
    inits: [[0, 0, 0]],
    steps: Array.from({ length: steps }, () => [[0, 0, 0]]),
    starts: [{ step: from, muProduct: 0.5, expAvg: [1, -0.75, 0.3], expAvgSq: [1, 0.5, 0.25] }],
  };
  return firstDifference(entry, scenario, path, profile);
}

const available = await Promise.all(BACKENDS.map(async (entry) => [entry, await entry.availability()] as const));

describe.each(available.map(([entry, availability]) => [entry.id, entry, availability] as const))("%s", (_id, entry, availability) => {
  const reason = availability.available ? "" : ` — skipped: ${availability.reason}`;
  const combos = entry.supports.paths.flatMap((path) => entry.supports.profiles.map((profile) => [path, profile] as const));

  test("claims at least one bit-exact profile (a tolerance backend needs a measured policy here first)", () => {
    expect(entry.supports.profiles.length).toBeGreaterThan(0);
  });

  describe.each(combos)("= spec, path %s, profile %s", (path, profile) => {
    test.skipIf(!availability.available)(`${RUNS} random scenarios, bit for bit${reason}`, async () => {
      await fc.assert(
        fc.asyncProperty(scenarioFor(entry), async (s) => {
          const difference = await firstDifference(entry, s, path, profile);
          if (difference !== null) throw new Error(difference);
        }),
        { numRuns: RUNS },
      );
    });

    test.skipIf(!availability.available)(`steps 959 to 1,200: mu_{t+1} from (t+1)·ψ, bit for bit${reason}`, async () => {
      const psi = NADAM_DEFAULTS.momentum_decay;
      // The run is long enough only if (t+1)·ψ and t·ψ + ψ give different mu_{t+1} in it.
      const separating = Array.from({ length: 242 }, (_, k) => 959 + k).filter((t) => glibcPow(0.96, (t + 1) * psi) !== glibcPow(0.96, t * psi + psi));
      expect(separating.length).toBeGreaterThan(10);
      expect(await longRun(entry, path, profile, 958, 242)).toBeNull();
    });
  });
});

test("the loaded start states round as load_state_dict does (mu_product to the param's dtype)", () => {
  // Guards loadedStart's model of the spec's state: a float64 mu_product loaded for a float16 param.
  const state = castStateOnLoad({ step: 3, step_dtype: "float64", mu_product: 0.1, mu_product_dtype: "float64", exp_avg: [], exp_avg_sq: [] }, "float16");
  expect(state.mu_product).toBe(roundToFormat(0.1, DTYPE.float16.format));
  expect(state.mu_product_dtype).toBe("float16");
});
