/**
 * ms per NAdam step, float32, for every built-in backend that runs here (the
 * registry, impl/backends/index.ts) × code path × profile it claims, side by
 * side in one run: 100 params × 10 elements (the per-step overhead), 4M
 * elements in 1 tensor and in 1,024 tensors of 4,096. Rounds are interleaved
 * (each round times one step of every configuration), medians reported.
 * Run: npm run bench -- backends [--rounds N] [--only ID,ID] [--json FILE]
 */
import { writeFileSync } from "node:fs";
import { BACKENDS } from "../../impl/backends/index.ts";
import { NAdam, Tensor } from "../../impl/index.ts";
import type { CodePath, RoundingProfile } from "../../spec/nadam/types.ts";

const args = process.argv.slice(2);
const option = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const ROUNDS = Number(option("--rounds") ?? 7);
const WARMUP = 2;
const only = option("--only")?.split(",");

const SHAPES = [
  { name: "100 x 10", count: 100, numel: 10 },
  { name: "4M x 1", count: 1, numel: 4 * 1024 * 1024 },
  { name: "1,024 x 4,096", count: 1024, numel: 4096 },
] as const;

interface Config {
  readonly backend: string;
  readonly path: CodePath;
  readonly profile: RoundingProfile;
  readonly shape: (typeof SHAPES)[number]["name"];
  readonly elements: number;
  step: () => Promise<void>;
  times: number[];
  failed?: string;
}

function tensors(count: number, numel: number, seed: number): Tensor[] {
  return Array.from({ length: count }, (_, t) => {
    const data = new Float32Array(numel);
    for (let i = 0; i < numel; i++) data[i] = Math.sin((t * numel + i + seed) * 0.37);
    return new Tensor("float32", [numel], data);
  });
}

const configs: Config[] = [];
for (const entry of BACKENDS) {
  if (only && !only.includes(entry.id)) continue;
  const availability = await entry.availability();
  if (!availability.available) {
    console.log(`${entry.id}: unavailable (${availability.reason})`);
    continue;
  }
  if (!entry.supports.dtypes.includes("float32")) continue;
  for (const path of entry.supports.paths) {
    for (const profile of entry.supports.profiles) {
      for (const shape of SHAPES) {
        const backend = await entry.create({ profile });
        const params = tensors(shape.count, shape.numel, 0);
        const grads = tensors(shape.count, shape.numel, 1).map((g) => new Tensor("float32", g.shape, g.data.map((x) => x * 0.1) as Float32Array));
        params.forEach((p, i) => (p.grad = grads[i]!));
        const optimizer = new NAdam(params, { weight_decay: 0.01, foreach: path === "foreach" }, { backend });
        configs.push({ backend: entry.id, path, profile, shape: shape.name, elements: shape.count * shape.numel, step: async () => void (await optimizer.stepAsync()), times: [] });
      }
    }
  }
}

for (let round = 0; round < ROUNDS + WARMUP; round++) {
  for (const config of configs) {
    if (config.failed) continue;
    const t0 = performance.now();
    try {
      await config.step();
    } catch (e) {
      config.failed = (e as Error).message.split("\n")[0];
      continue;
    }
    if (round >= WARMUP) config.times.push(performance.now() - t0);
  }
  process.stderr.write(`round ${round + 1}/${ROUNDS + WARMUP}\n`);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const rows = [["backend", "path", "profile", "shape", "ms/step", "ns/element", "GB/s (28 B/element)"]];
const results = configs.map((c) => {
  const ms = median(c.times);
  return { backend: c.backend, path: c.path, profile: c.profile, shape: c.shape, ms, failed: c.failed };
});
for (const r of results) {
  const elements = configs.find((c) => c.backend === r.backend && c.shape === r.shape)!.elements;
  rows.push(
    r.failed
      ? [r.backend, r.path, r.profile, r.shape, `failed: ${r.failed}`, "", ""]
      : [r.backend, r.path, r.profile, r.shape, r.ms.toFixed(r.ms < 10 ? 3 : 1), ((r.ms * 1e6) / elements).toFixed(1), ((28 * elements) / (r.ms * 1e6)).toFixed(2)],
  );
}
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
console.log(`node ${process.version}, float32, weight_decay 0.01 (L2), median of ${ROUNDS} interleaved rounds after ${WARMUP} warm-up rounds`);
for (const r of rows) console.log(r.map((cell, c) => (c < 4 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  "));
const json = option("--json");
if (json) writeFileSync(json, JSON.stringify({ node: process.version, rounds: ROUNDS, results }, null, 2));
process.exit(0);
