/**
 * The parity table: every built-in port over the whole golden corpus under the
 * default policy (each case judged against torch's recording for its own CPU
 * profile and code path; a backend with one profile is judged on the other
 * profile's recordings too), aggregated per port × path × dtype × recorded
 * profile: values compared, the share in bit-identical cases, the largest
 * distance in ULPs at scale. Run: npm run parity [-- --json FILE] [--from REPORT]
 *
 * --from: the same table from a report.json that `nadam-reference check --report`
 * wrote elsewhere (a GPU machine, another port), instead of running the built-in ports here.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../cli/main.ts";

interface Result {
  readonly dtype: string;
  readonly path: string;
  readonly profile: string;
  readonly status: string;
  readonly comparison?: { readonly values: number; readonly bitIdentical: boolean; readonly maxDistance: Record<string, number> };
}
interface Report {
  readonly ports: readonly { readonly name: string; readonly skipped?: string; readonly results: readonly Result[] }[];
}

const flag = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const from = flag("--from");
const dir = from === undefined ? mkdtempSync(join(tmpdir(), "nadam-parity-")) : undefined;
const code = dir === undefined ? undefined : await main(["check", "--builtin", "--policy", "default", "--corpus", "golden/data", "--report", dir], () => {});
const report = JSON.parse(readFileSync(from ?? join(dir!, "report.json"), "utf8")) as Report;

interface Row {
  port: string;
  path: string;
  dtype: string;
  profile: string;
  cases: number;
  values: number;
  identicalValues: number;
  maxUlp: number;
  failed: number;
}
const rows = new Map<string, Row>();
for (const port of report.ports) {
  for (const r of port.results) {
    if (r.comparison === undefined) continue;
    const key = [port.name, r.path, r.dtype, r.profile].join("|");
    const row = rows.get(key) ?? { port: port.name, path: r.path, dtype: r.dtype, profile: r.profile, cases: 0, values: 0, identicalValues: 0, maxUlp: 0, failed: 0 };
    row.cases++;
    row.values += r.comparison.values;
    if (r.comparison.bitIdentical) row.identicalValues += r.comparison.values;
    row.maxUlp = Math.max(row.maxUlp, ...Object.values(r.comparison.maxDistance));
    if (r.status !== "pass") row.failed++;
    rows.set(key, row);
  }
}
const table = [["port", "path", "dtype", "recorded profile", "cases", "values", "in bit-identical cases", "max ULP", "not passed"]];
for (const r of rows.values()) {
  table.push([r.port, r.path, r.dtype, r.profile, String(r.cases), String(r.values), `${((100 * r.identicalValues) / r.values).toFixed(1)} %`, String(r.maxUlp), String(r.failed)]);
}
const widths = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
for (const r of table) console.log(r.map((cell, c) => (c < 4 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  "));
for (const port of report.ports) if (port.skipped) console.log(`${port.name}: skipped (${port.skipped})`);
console.log(from === undefined ? `(check exited ${code}; report: ${dir})` : `(from ${from})`);
const json = flag("--json");
if (json !== undefined) writeFileSync(json, JSON.stringify([...rows.values()], null, 2));
process.exit(0);
