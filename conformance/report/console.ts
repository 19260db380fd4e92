/** The console summary: ports × case groups, as test262 dashboards show engines × features. */
import { cell, groupOf, judged, LEGEND, type SuiteReport } from "../suite.ts";

export function matrix(report: SuiteReport): string {
  const groups = [...new Set(report.ports.flatMap((p) => p.results.map((r) => groupOf(r.id))))];
  const rows = [["port", ...groups, "all"]];
  const notes: string[] = [];
  for (const p of report.ports) {
    // The port's own name, and what the user called it when that differs: a port (not a built-in one) chooses its name.
    const label = p.spec === undefined || p.spec.startsWith("builtin:") ? p.name : `${p.name} (${p.spec})`;
    if (p.error && p.results.length === 0) rows.push([label, `could not run: ${p.error}`]);
    else if (p.skipped) rows.push([label, `skipped: ${p.skipped}`]);
    else rows.push([label, ...groups.map((g) => cell(p.results.filter((r) => groupOf(r.id) === g))), cell(p.results)]);
    if (p.error && p.results.length > 0) notes.push(`${label}: ${p.error}`);
    if (p.shutdown) notes.push(`${label}: ending it: ${p.shutdown}`);
  }
  // A skipped or failed port's row is its name and one note: the note does not widen the matrix's columns.
  const widths = rows[0]!.map((_, i) => Math.max(...rows.filter((r) => r.length === rows[0]!.length || i === 0).map((r) => (r[i] ?? "").length)));
  const lines = rows.map((r) => (r.length < rows[0]!.length ? `${r[0]!.padEnd(widths[0]!)}  ${r.slice(1).join("  ")}` : r.map((x, i) => (i === 0 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join("  ")));
  const nothing = report.ports.some((p) => p.results.some(judged)) ? [] : ["no case was judged: every port was skipped, or had nothing the selected cases need"];
  return [`policy: ${report.policy.name} (${report.policy.description})`, ...lines, LEGEND, ...notes, ...nothing].join("\n");
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
