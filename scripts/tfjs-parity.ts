/**
 * The tfjs backends' parity, measured: per tfjs backend × path × profile
 * (float32, the only dtype tfjs has), over the float32 golden corpus (torch
 * 2.6's recordings, the port stepping on the recorded grads) and over random
 * property cases (against the spec), the share of bit-identical values and the
 * largest distance in float32 ULPs (params, exp_avg, exp_avg_sq, mu_product,
 * step at every step). Both profiles are run on every backend, claimed or not:
 * this is where a claim comes from. Run: npx tsx scripts/tfjs-parity.ts [random cases]
 */
import fc from "fast-check";
import { backendPort } from "../conformance/builtin.ts";
import { selectCases } from "../conformance/cases.ts";
import { drive, expected } from "../conformance/run.ts";
import type { TrajectoryStep } from "../golden/simulate.ts";
import type { BackendEntry } from "../impl/backend.ts";
import { tfjsBackend } from "../impl/backends/tfjs/backend.ts";
import { prepareUpdate, type KernelChoice } from "../impl/backends/tfjs/update.ts";
import { tfjsCpu, tfjsWasm, tfjsWebgpu } from "../impl/backends/tfjs/index.ts";
import { loadTfjs, type TfjsBackendName } from "../impl/backends/tfjs/runtime.ts";
import { NAdam, Tensor } from "../impl/index.ts";
import { f32ToBits } from "../spec/float/bits.ts";
import { NADAM_DEFAULTS } from "../spec/nadam/defaults.ts";
import { nadamStep, type NadamHyperParameters, type NadamParamState } from "../spec/nadam/step.ts";
import type { CodePath, RoundingProfile } from "../spec/nadam/types.ts";

const RANDOM_CASES = Number(process.argv[2] ?? 300);

/** Distance in float32 ULPs: how many float32 values lie between (0 for the same bits, NaN = NaN). */
function ulps(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b) ? 0 : Infinity;
  if (Object.is(a, b)) return 0;
  const ordered = (x: number) => {
    const bits = f32ToBits(x);
    return bits >= 0x80000000 ? -(bits - 0x80000000) : bits;
  };
  return Math.abs(ordered(a) - ordered(b));
}

class Tally {
  values = 0;
  identical = 0;
  maxUlps = 0;
  where = "";
  add(want: readonly number[], got: readonly number[], where: string): void {
    want.forEach((w, i) => {
      const d = got[i] === undefined ? Infinity : ulps(w, got[i]!);
      this.values++;
      if (d === 0) this.identical++;
      if (d > this.maxUlps) {
        this.maxUlps = d;
        this.where = `${where}[${i}]: ${got[i]} vs ${w}`;
      }
    });
  }
  addSteps(want: readonly TrajectoryStep[], got: readonly TrajectoryStep[], id: string): void {
    want.forEach((step, s) => {
      step.params.forEach((p, i) => this.add(p, got[s]?.params[i] ?? [], `${id} step ${s + 1} param ${i}`));
      step.state.forEach((st, i) => {
        const other = got[s]?.state[i];
        if (st === null || other === null || other === undefined) return;
        this.add([st.step, st.mu_product, ...st.exp_avg, ...st.exp_avg_sq], [other.step, other.mu_product, ...other.exp_avg, ...other.exp_avg_sq], `${id} step ${s + 1} state ${i}`);
      });
    });
  }
  toString(): string {
    return `${((100 * this.identical) / Math.max(1, this.values)).toFixed(4)}% of ${this.values} identical, max ${this.maxUlps} ULP${this.maxUlps ? ` (${this.where})` : ""}`;
  }
}

/** A registry entry that runs the profile it is asked for, claimed or not. */
function forced(entry: BackendEntry, name: TfjsBackendName, kernel: KernelChoice): BackendEntry {
  const supports = { ...entry.supports, profiles: ["default", "vectorized"] as RoundingProfile[] };
  return {
    ...entry,
    supports,
    create: async ({ profile }) => {
      const { tf } = await loadTfjs(name);
      await prepareUpdate(tf!, name, profile!, kernel);
      return tfjsBackend({ tf: tf!, backendName: name, profile: profile!, supports, device: "cpu", kernel });
    },
  };
}

const hyper: fc.Arbitrary<NadamHyperParameters> = fc.record({
  lr: fc.oneof(fc.double({ min: 0, max: 0.1, noNaN: true }), fc.constantFrom(2e-3, 1e-3)),
  lr_is_tensor: fc.constant(false),
  betas: fc.tuple(fc.oneof(fc.double({ min: 0, max: 0.99, noNaN: true }), fc.constant(0.9)), fc.oneof(fc.double({ min: 0, max: 0.9999, noNaN: true }), fc.constant(0.999))),
  eps: fc.constantFrom(0, 1e-8, 1e-6, 1e-3),
  weight_decay: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 0.2, noNaN: true })),
  momentum_decay: fc.oneof(fc.constant(4e-3), fc.double({ min: 0, max: 0.02, noNaN: true })),
  decoupled_weight_decay: fc.boolean(),
  maximize: fc.boolean(),
});
const value = fc.oneof({ weight: 8, arbitrary: fc.double({ min: -2, max: 2, noNaN: true }) }, { weight: 1, arbitrary: fc.constantFrom(0, -0, 1e-30, 3e-39, 1e4, -1e4) });
const scenario = fc
  .record({ hyper, sizes: fc.array(fc.integer({ min: 1, max: 70 }), { minLength: 1, maxLength: 3 }), steps: fc.integer({ min: 1, max: 5 }) })
  .chain(({ hyper, sizes, steps }) =>
    fc.record({
      hyper: fc.constant(hyper),
      inits: fc.tuple(...sizes.map((n) => fc.array(value, { minLength: n, maxLength: n }))),
      grads: fc.array(fc.tuple(...sizes.map((n) => fc.array(value, { minLength: n, maxLength: n }))), { minLength: steps, maxLength: steps }),
    }),
  );
const SCENARIOS = fc.sample(scenario, { numRuns: RANDOM_CASES, seed: 12 });

async function randomCases(entry: BackendEntry, path: CodePath, profile: RoundingProfile, tally: Tally): Promise<void> {
  for (const [k, s] of SCENARIOS.entries()) {
    const params = s.inits.map((v) => Tensor.from(v, "float32"));
    const backend = await entry.create({ profile });
    const optimizer = new NAdam([{ params, ...s.hyper, betas: [...s.hyper.betas] }], { foreach: path === "foreach" }, { backend });
    let data = params.map((p) => p.toArray());
    let state: (NadamParamState | undefined)[] = params.map(() => undefined);
    for (const grads of s.grads) {
      params.forEach((p, i) => (p.grad = Tensor.from(grads[i]!, "float32")));
      await optimizer.stepAsync();
      const result = nadamStep(params.map((p, i) => ({ dtype: "float32" as const, data: data[i]!, grad: p.grad!.toArray() })), state, { ...NADAM_DEFAULTS, ...s.hyper }, { path, profile });
      data = result.data;
      state = result.state;
      params.forEach((p, i) => tally.add(data[i]!, p.toArray(), `random ${k} param ${i}`));
    }
    await backend.dispose?.();
  }
}

const rows: string[] = [];
for (const [entry, name, kernel] of [
  [tfjsCpu, "cpu", "ops"],
  [tfjsWasm, "wasm", "ops"],
  [tfjsWebgpu, "webgpu", "ops"],
  [tfjsWebgpu, "webgpu", "fused"],
] as const) {
  const availability = await entry.availability();
  if (!availability.available) {
    rows.push(`${entry.id}: skipped: ${availability.reason}`);
    continue;
  }
  const port = backendPort(forced(entry, name, kernel));
  for (const path of ["forloop", "foreach"] as const) {
    for (const profile of ["default", "vectorized"] as const) {
      const golden = new Tally();
      const cases = selectCases({ dtypes: ["float32"], paths: [path], profiles: [profile] });
      for (const c of cases) golden.addSteps(expected(c), await drive(port, c), c.id);
      const random = new Tally();
      await randomCases(forced(entry, name, kernel), path, profile, random);
      const line = `${entry.id} (${kernel}) ${path} float32 ${profile}: golden (${cases.length} cases) ${golden}; random (${RANDOM_CASES} cases) ${random}`;
      console.log(line);
      rows.push(line);
    }
  }
}
console.log("\n" + rows.join("\n"));
