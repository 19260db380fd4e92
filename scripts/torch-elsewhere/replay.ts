/**
 * Replays the runs that catalog.py wrote (one folder per run) through the spec and
 * prints, per run × spec profile × dtype × path: values compared, the share that is
 * bit-identical (NaN = NaN counts as identical), the largest ULP distance, that
 * distance outside the edge/ cases (NaN, ±Inf, eps 0, extreme magnitudes), and the
 * cases with any difference. A CPU run is replayed under its own profile; a CUDA run
 * under `cuda` and the CPU's two. Run: npx tsx scripts/torch-elsewhere/replay.ts RUNS_DIR [--detail]
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { ulpsApart } from "../../conformance/judge.ts";
import type { DType } from "../../spec/float/dtype.ts";
import type { RoundingProfile } from "../../spec/nadam/types.ts";
import type { GoldenCase } from "../../golden/case.ts";
import { configOf, recorded, simulate } from "../../golden/simulate.ts";

interface Row {
  cases: number;
  differing: string[];
  values: number;
  identical: number;
  maxUlp: bigint;
  maxUlpOutsideEdge: bigint;
  first: string;
}

const walk = (dir: string): string[] => readdirSync(dir).flatMap((name) => (statSync(join(dir, name)).isDirectory() ? walk(join(dir, name)) : [join(dir, name)]));
const NOT_A_NUMBER_APART = 1n << 62n; // one side NaN, the other not

function replay(golden: GoldenCase, profile: RoundingProfile, row: Row): void {
  const want = recorded(golden);
  const got = simulate(golden, undefined, { ...configOf(golden), profile });
  const dtypes = golden.params.map((p) => p.init.dtype);
  const edge = golden.id.startsWith("edge/");
  let differs = false;
  const compare = (dtype: DType, torch: number, spec: number, what: string): void => {
    row.values++;
    if ((Number.isNaN(torch) && Number.isNaN(spec)) || Object.is(torch, spec)) {
      row.identical++;
      return;
    }
    differs = true;
    const apart = ulpsApart(dtype, torch, spec) ?? NOT_A_NUMBER_APART;
    const distance = apart === 0n ? 1n : apart; // -0 against +0
    if (distance > row.maxUlp) row.maxUlp = distance;
    if (!edge && distance > row.maxUlpOutsideEdge) row.maxUlpOutsideEdge = distance;
    if (!row.first) row.first = `${golden.id} ${what}: torch ${torch}, spec ${spec} (${apart} ULP)`;
  };
  want.forEach((step, s) => {
    const mine = got[s]!;
    step.params.forEach((values, id) => values.forEach((x, i) => compare(dtypes[id]!, x, mine.params[id]![i]!, `step ${s + 1} param ${id}[${i}]`)));
    step.state.forEach((state, id) => {
      const other = mine.state[id];
      if (!state || !other) return;
      compare(state.step_dtype, state.step, other.step, `step ${s + 1} state ${id} step`);
      compare(state.mu_product_dtype, state.mu_product, other.mu_product, `step ${s + 1} state ${id} mu_product`);
      state.exp_avg.forEach((x, i) => compare(dtypes[id]!, x, other.exp_avg[i]!, `step ${s + 1} state ${id} exp_avg[${i}]`));
      state.exp_avg_sq.forEach((x, i) => compare(dtypes[id]!, x, other.exp_avg_sq[i]!, `step ${s + 1} state ${id} exp_avg_sq[${i}]`));
    });
  });
  row.cases++;
  if (differs) row.differing.push(golden.id);
}

const root = process.argv[2];
if (!root) throw new Error("usage: replay.ts RUNS_DIR [--detail]");
const detail = process.argv.includes("--detail");
for (const run of readdirSync(root).filter((name) => statSync(join(root, name)).isDirectory()).sort()) {
  const cases = walk(join(root, run))
    .filter((f) => f.endsWith(".json") && !f.endsWith("manifest.json"))
    .map((f) => JSON.parse(readFileSync(f, "utf8")) as GoldenCase & { torch: { capturable?: boolean } });
  const first = cases[0];
  if (!first) continue;
  // a CUDA run under the CPU's profiles too, to show how far they are
  const profiles: readonly RoundingProfile[] = first.torch.profile === "cuda" ? ["cuda", "vectorized", "default"] : [first.torch.profile];
  for (const profile of profiles) {
    const rows = new Map<string, Row>();
    for (const golden of cases) {
      const key = `${golden.dtype.padEnd(10)} ${golden.foreach ? "foreach" : "forloop"}`;
      const row = rows.get(key) ?? { cases: 0, differing: [], values: 0, identical: 0, maxUlp: 0n, maxUlpOutsideEdge: 0n, first: "" };
      rows.set(key, row);
      replay(golden, profile, row);
    }
    console.log(`\n${run} (torch ${first.torch.version}, ${first.torch.device ?? first.torch.cpu_capability}${first.torch.capturable ? ", capturable" : ""}), spec profile ${profile}: ${cases.length} cases`);
    console.log(`  dtype      path     cases  differing    values  bit-identical  max ULP  max ULP outside edge/`);
    for (const [key, r] of [...rows].sort(([a], [b]) => a.localeCompare(b))) {
      const share = ((100 * r.identical) / r.values).toFixed(3);
      console.log(`  ${key}  ${String(r.cases).padStart(5)}  ${String(r.differing.length).padStart(9)}  ${String(r.values).padStart(8)}  ${share.padStart(12)}%  ${String(r.maxUlp).padStart(7)}  ${String(r.maxUlpOutsideEdge).padStart(21)}`);
      if (detail && r.first) console.log(`      first: ${r.first}\n      differing: ${r.differing.join(", ")}`);
    }
  }
}
