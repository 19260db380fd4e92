/**
 * Property: for random options, group layouts, shapes, dtypes, grads and step
 * counts, the NAdam API on the typed-array backend equals the spec bit for bit,
 * on both code paths and under both rounding profiles (1,000 runs each).
 */
import fc from "fast-check";
import { describe, test } from "vitest";
import { sameValue } from "../../golden/compare.ts";
import { NADAM_DEFAULTS } from "../../spec/nadam/defaults.ts";
import { nadamStep, type NadamHyperParameters, type NadamParamState } from "../../spec/nadam/step.ts";
import { CODE_PATHS, DTYPES, ROUNDING_PROFILES, type DType } from "../../spec/nadam/types.ts";
import { NAdam, Tensor, typedArrayBackend } from "../index.ts";

const RUNS = 1000;

interface Scenario {
  dtype: DType;
  defaultDtype: "float32" | "float64";
  groups: { hyper: NadamHyperParameters; shapes: number[][] }[];
  /** per step, per param (flattened over groups): grad values or null */
  steps: (number[] | null)[][];
  inits: number[][];
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

const hyper: fc.Arbitrary<NadamHyperParameters> = fc.record({
  lr: fc.oneof(fc.double({ min: 0, max: 0.1, noNaN: true }), fc.constantFrom(0, 2e-3, 1e-3)),
  lr_is_tensor: fc.boolean(),
  betas: fc.tuple(fc.oneof(fc.double({ min: 0, max: 0.99, noNaN: true }), fc.constantFrom(0, 0.5, 0.9)), fc.oneof(fc.double({ min: 0, max: 0.9999, noNaN: true }), fc.constantFrom(0, 0.999))),
  eps: fc.constantFrom(0, 1e-8, 1e-6, 1e-3),
  weight_decay: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 0.2, noNaN: true })),
  momentum_decay: fc.oneof(fc.constantFrom(0, 4e-3), fc.double({ min: 0, max: 0.02, noNaN: true })),
  decoupled_weight_decay: fc.boolean(),
  maximize: fc.boolean(),
  differentiable: fc.boolean(),
}).map((h) => ({ ...h, lr: h.lr_is_tensor ? Math.fround(h.lr) : h.lr }));

const scenario: fc.Arbitrary<Scenario> = fc
  .record({
    dtype: fc.constantFrom(...DTYPES),
    defaultDtype: fc.constantFrom("float32" as const, "float64" as const),
    groups: fc.array(fc.record({ hyper, shapes: fc.array(shape, { minLength: 1, maxLength: 3 }) }), { minLength: 1, maxLength: 3 }),
    stepCount: fc.integer({ min: 1, max: 5 }),
    seed: fc.integer(),
  })
  .chain(({ dtype, defaultDtype, groups, stepCount }) => {
    const sizes = groups.flatMap((g) => g.shapes.map((s) => s.reduce((a, b) => a * b, 1)));
    const grad = (n: number) => fc.option(fc.array(value, { minLength: n, maxLength: n }), { freq: 6, nil: null });
    return fc.record({
      dtype: fc.constant(dtype),
      defaultDtype: fc.constant(defaultDtype),
      groups: fc.constant(groups),
      inits: fc.tuple(...sizes.map((n) => fc.array(value, { minLength: n, maxLength: n }))),
      steps: fc.array(fc.tuple(...sizes.map(grad)), { minLength: stepCount, maxLength: stepCount }),
    });
  });

function groupOptions(h: NadamHyperParameters): Record<string, unknown> {
  return { ...h, lr: h.lr_is_tensor ? Tensor.scalar(h.lr, "float32") : h.lr, betas: [...h.betas], lr_is_tensor: undefined };
}

/** Runs a scenario through the API and through the spec; returns the first difference, or null. */
function firstDifference(scenario: Scenario, path: "forloop" | "foreach", profile: "default" | "vectorized"): string | null {
  // foreach refuses differentiable groups (PyTorch asserts); the for-loop path takes its own branch.
  const s = path === "foreach" ? { ...scenario, groups: scenario.groups.map((g) => ({ ...g, hyper: { ...g.hyper, differentiable: false } })) } : scenario;
  const shapes = s.groups.flatMap((g) => g.shapes);
  const params = shapes.map((sh, i) => Tensor.from(s.inits[i]!, s.dtype, sh));
  let id = 0;
  const groupIds = s.groups.map((g) => g.shapes.map(() => id++));
  const optimizer = new NAdam(
    s.groups.map((g, k) => ({ params: groupIds[k]!.map((i) => params[i]!), ...groupOptions(g.hyper) })),
    { foreach: path === "foreach" },
    { backend: typedArrayBackend({ profile }), defaultDtype: s.defaultDtype },
  );
  // The spec's view: exact dtype values, state carried by hand.
  const data = params.map((p) => p.toArray());
  const state: (NadamParamState | undefined)[] = params.map(() => undefined);

  for (const [k, grads] of s.steps.entries()) {
    params.forEach((p, i) => {
      p.grad = grads[i] === null ? null : Tensor.from(grads[i]!, s.dtype, p.shape);
    });
    optimizer.step();
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
    for (const [i, p] of params.entries()) {
      const actual = p.toArray();
      const bad = actual.findIndex((x, e) => !sameValue(s.dtype, data[i]![e]!, x));
      if (bad >= 0) return `step ${k + 1}, param ${i}[${bad}]: API ${actual[bad]}, spec ${data[i]![bad]}`;
      const st = optimizer.state.get(p);
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
  return null;
}

describe.each(CODE_PATHS.flatMap((path) => ROUNDING_PROFILES.map((profile) => [path, profile] as const)))("typed-array backend = spec, path %s, profile %s", (path, profile) => {
  test(`${RUNS} random scenarios, bit for bit`, () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const difference = firstDifference(s, path, profile);
        if (difference !== null) throw new Error(difference);
      }),
      { numRuns: RUNS },
    );
  });
});
