/**
 * `npm run replay`: replays the whole golden corpus (and golden/cuda) through the spec and prints, per
 * torch version and rounding profile, how many cases and values matched real
 * PyTorch bit for bit. Exits 1 on any mismatch, naming the first ones.
 */
import { loadReplayedCases } from "./load.ts";
import { replayCase, type ReplayReport } from "./replay.ts";
import { runLabel, summarize } from "./summary.ts";

const started = performance.now();
const reports = new Map<string, ReplayReport[]>();
for (const { golden } of loadReplayedCases()) {
  const run = runLabel(golden);
  reports.set(run, [...(reports.get(run) ?? []), replayCase(golden)]);
}
console.log(summarize(reports));
const failing = [...reports.values()].flat().filter((r) => r.mismatches > 0);
for (const r of failing.slice(0, 10)) {
  const m = r.firstMismatches[0]!;
  console.log(`FAIL ${r.id}: step ${m.step}: ${m.what} = ${m.actual}, torch ${m.expected} (${r.mismatches} values differ)`);
}
console.log(`(${((performance.now() - started) / 1000).toFixed(1)} s)`);
process.exitCode = failing.length > 0 ? 1 : 0;
