/** The console summary: ports × case groups, as test262 dashboards show engines × features. */
import { cell, groupOf, judged, LEGEND, type SuiteReport } from "../suite.ts";

export function matrix(report: SuiteReport): string {
  const groups = [...new Set(report.ports.flatMap((p) => p.results.map((r) => groupOf(r.id))))];
  const rows = [["port", ...groups, "all"]];
  for (const p of report.ports) {
    if (p.error) {
      rows.push([p.name, `could not run: ${p.error}`]);
      continue;
    }
    if (p.skipped) {
      rows.push([p.name, `skipped: ${p.skipped}`]);
      continue;
    }
    rows.push([p.name, ...groups.map((g) => cell(p.results.filter((r) => groupOf(r.id) === g))), cell(p.results)]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  const lines = rows.map((r) => r.map((x, i) => (i === 0 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join("  "));
  const nothing = report.ports.some((p) => p.results.some(judged)) ? [] : ["no case was judged: every port was skipped, or had nothing the selected cases need"];
  return [`policy: ${report.policy.name} (${report.policy.description})`, ...lines, LEGEND, ...nothing].join("\n");
}

/** The failures, each with its first divergence and diagnosis: what a porter reads first. */
export function failures(report: SuiteReport, limit = 20): string {
  const lines: string[] = [];
  for (const p of report.ports) {
    const bad = p.results.filter((r) => r.status === "fail" || r.status === "error" || r.status === "unexpected-pass");
    for (const r of bad.slice(0, limit)) {
      lines.push(`${p.name} ✗ ${r.id} [${r.profile}] ${r.status}: ${r.firstDivergence ?? r.reason ?? ""}`);
      if (r.diagnosis) lines.push(`    looks like: ${r.diagnosis.mistake} — ${r.diagnosis.explanation}`);
    }
    if (bad.length > limit) lines.push(`${p.name}: ${bad.length - limit} more failures (see the reports)`);
  }
  return lines.join("\n");
}
