/** JUnit XML, one testsuite per port, one testcase per case and profile, for CI systems. */
import type { SuiteReport } from "../suite.ts";

function xml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

export function junit(report: SuiteReport): string {
  const suites = report.ports.map((p) => {
    const cases = p.results.map((r) => {
      const name = `${r.id} [${r.profile}]`;
      const time = (r.milliseconds / 1000).toFixed(3);
      let body = "";
      if (r.status === "fail" || r.status === "unexpected-pass") {
        const message = r.status === "fail" ? (r.firstDivergence ?? "") : `passed, but expected to fail: ${r.reason}`;
        body = `<failure message="${xml(message)}">${xml([message, r.diagnosis ? `looks like ${r.diagnosis.mistake}: ${r.diagnosis.explanation}` : ""].join("\n"))}</failure>`;
      } else if (r.status === "error") body = `<error message="${xml(r.reason ?? "")}"/>`;
      else if (r.status === "skip" || r.status === "expected-fail") body = `<skipped message="${xml(r.reason ?? r.status)}"/>`;
      return `    <testcase classname="${xml(p.name)}" name="${xml(name)}" time="${time}">${body}</testcase>`;
    });
    if (p.skipped) cases.push(`    <testcase classname="${xml(p.name)}" name="(port)" time="0"><skipped message="${xml(p.skipped)}"/></testcase>`);
    const n = (s: string[]) => p.results.filter((r) => s.includes(r.status)).length;
    return `  <testsuite name="${xml(p.name)}" tests="${p.results.length + (p.skipped ? 1 : 0)}" failures="${n(["fail", "unexpected-pass"])}" errors="${n(["error"]) + (p.error ? 1 : 0)}" skipped="${n(["skip", "expected-fail"]) + (p.skipped ? 1 : 0)}">\n${cases.join("\n")}\n  </testsuite>`;
  });
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="nadam conformance (policy ${xml(report.policy.name)})">\n${suites.join("\n")}\n</testsuites>\n`;
}
