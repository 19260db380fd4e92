/**
 * A self-contained HTML report: the matrix, then per port all its failures and
 * errors (the first 50 open, the rest folded), its expected failures and a
 * sample of its passing cases, each with a plot of the error of the tensor
 * that diverged (ULPs at scale, log axis) against the step, and the diagnosis
 * beside it. No script, no external resource: it opens from a file anywhere.
 */
import type { TensorKind } from "../policy.ts";
import type { CaseResult } from "../run.ts";
import { cell, counts, groupOf, LEGEND, type SuiteReport } from "../suite.ts";

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** An SVG line plot of log10(1 + distance) against the step. */
export function plot(distances: readonly number[], budget: number, tensor: TensorKind = "param"): string {
  const width = 360;
  const height = 120;
  const pad = 28;
  const ys = distances.map((d) => Math.log10(1 + (Number.isFinite(d) ? d : 1e17)));
  const top = Math.max(1, ...ys, Math.log10(1 + budget));
  const x = (i: number) => pad + (distances.length <= 1 ? 0 : (i / (distances.length - 1)) * (width - 2 * pad));
  const y = (v: number) => height - pad + 4 - (v / top) * (height - pad - 8);
  const points = ys.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  const budgetY = y(Math.log10(1 + budget)).toFixed(1);
  return `<svg class="plot" data-points="${ys.length}" data-tensor="${tensor}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${tensor} error against step">
<line x1="${pad}" y1="${height - pad + 4}" x2="${width - pad}" y2="${height - pad + 4}" stroke="#999"/>
<line x1="${pad}" y1="4" x2="${pad}" y2="${height - pad + 4}" stroke="#999"/>
<line x1="${pad}" y1="${budgetY}" x2="${width - pad}" y2="${budgetY}" stroke="#c60" stroke-dasharray="4 3"><title>budget ${budget}</title></line>
<polyline fill="none" stroke="#036" stroke-width="1.5" points="${points}"/>
<text x="${pad}" y="${height - 6}" font-size="10">step 1</text><text x="${width - pad}" y="${height - 6}" font-size="10" text-anchor="end">step ${distances.length}</text>
<text x="2" y="12" font-size="10">10^${top.toFixed(0)}</text><text x="2" y="${height - pad + 4}" font-size="10">0</text><text x="${width / 2}" y="12" font-size="10" text-anchor="middle">${tensor}</text>
</svg>`;
}

function caseBlock(r: CaseResult): string {
  // The tensor that diverged first (a failure may be in the state only); the params otherwise.
  const tensor = r.comparison?.first?.kind ?? "param";
  const distances = r.comparison?.distanceByStep[tensor] ?? [];
  const budget = r.comparison?.first?.budget ?? 0;
  return `<div class="case ${r.status}" data-status="${r.status}">
<h4>${esc(r.id)} <small>[${esc(r.profile)}, ${esc(r.dtype)}, ${esc(r.path)}]</small> <span class="badge">${esc(r.status)}</span></h4>
${distances.length > 0 ? plot(distances, budget, tensor) : ""}
<div class="why">${r.firstDivergence ? `<p>first divergence: ${esc(r.firstDivergence)}</p>` : ""}${r.matched ? `<p>matches ${esc(r.matched)}</p>` : ""}${r.reason ? `<p>${esc(r.reason)}</p>` : ""}${
    r.diagnosis ? `<p class="diagnosis"><b>looks like ${esc(r.diagnosis.mistake)}</b>: ${esc(r.diagnosis.explanation)}</p>` : r.status === "fail" ? "<p>no known mistake matches</p>" : ""
  }</div></div>`;
}

export function html(report: SuiteReport, sampleSize = 6): string {
  const groups = [...new Set(report.ports.flatMap((p) => p.results.map((r) => groupOf(r.id))))];
  const rows = report.ports.map((p) => {
    const cells = [...groups, "all"].map((g) => {
      const results = g === "all" ? p.results : p.results.filter((r) => groupOf(r.id) === g);
      const c = counts(results);
      const bad = c.fail + c.error + c["unexpected-pass"];
      return `<td class="${bad > 0 ? "bad" : "good"}">${esc(cell(results))}</td>`;
    });
    return `<tr><th>${esc(p.name)}</th>${p.error ? `<td colspan="${groups.length + 1}">${esc(p.error)}</td>` : p.skipped ? `<td colspan="${groups.length + 1}">skipped: ${esc(p.skipped)}</td>` : cells.join("")}</tr>`;
  });
  const sections = report.ports.map((p) => {
    const bad = p.results.filter((r) => r.status === "fail" || r.status === "error" || r.status === "unexpected-pass");
    const expected = p.results.filter((r) => r.status === "expected-fail");
    const passed = p.results.filter((r) => r.status === "pass").sort((a, b) => b.id.localeCompare(a.id));
    const sample = passed.filter((_, i) => i % Math.max(1, Math.floor(passed.length / sampleSize)) === 0).slice(0, sampleSize);
    const folded = bad.slice(50);
    return `<section><h2>${esc(p.name)}</h2><p>${bad.length} failing case${bad.length === 1 ? "" : "s"} (failed, errored or passed unexpectedly), ${expected.length} expected-fail, ${passed.length} passed.</p>
${bad.slice(0, 50).map(caseBlock).join("\n")}
${folded.length > 0 ? `<details class="more-failures"><summary>${folded.length} more failing cases</summary>${folded.map(caseBlock).join("\n")}</details>` : ""}
${expected.length > 0 ? `<details class="expected-failures"><summary>${expected.length} expected-fail cases (listed in an expectation file)</summary>${expected.map(caseBlock).join("\n")}</details>` : ""}
<details><summary>${sample.length} passing cases (a sample)</summary>${sample.map(caseBlock).join("\n")}</details></section>`;
  });
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>NAdam conformance report</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{text-align:left}
td.good{background:#e8f5e9}td.bad{background:#fdecea}.case{border:1px solid #ddd;margin:8px 0;padding:6px 10px;display:flex;flex-wrap:wrap;gap:12px}.case h4{width:100%;margin:0}
.case.fail,.case.error,.case.unexpected-pass{border-color:#c33}.case.expected-fail{border-color:#c90}.badge{font-size:11px;background:#eee;padding:1px 6px;border-radius:3px}.why{max-width:640px}.diagnosis{background:#fff3e0;padding:4px}
</style></head><body>
<h1>NAdam conformance report</h1>
<p>Policy <b>${esc(report.policy.name)}</b>: ${esc(report.policy.description)}. Started ${esc(report.startedAt)}, ${report.seconds.toFixed(1)} s.</p>
<table id="matrix"><tr><th>port</th>${[...groups, "all"].map((g) => `<th>${esc(g)}</th>`).join("")}</tr>${rows.join("")}</table>
<p>${esc(LEGEND)}.</p>
<p>Plots: per step, the largest distance of the tensor that diverged (the params where none did), in ULPs at scale (log axis); the dashed line is the policy's budget.</p>
${sections.join("\n")}
</body></html>
`;
}
