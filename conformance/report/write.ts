/** Writes a run's reports into a folder: report.json (everything), junit.xml, report.html. */
import { mkdirSync } from "node:fs";
import { replaceFile } from "../../checkpoint/files.ts";
import { join } from "node:path";
import type { SuiteReport } from "../suite.ts";
import { html } from "./html.ts";
import { junit } from "./junit.ts";

export function writeReports(report: SuiteReport, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const files = [join(dir, "report.json"), join(dir, "junit.xml"), join(dir, "report.html")];
  // Infinity (NaN against a number) becomes null in JSON. Each file replaced whole: a link planted in the folder is replaced, not written through.
  replaceFile(files[0]!, JSON.stringify(report, null, 1) + "\n");
  replaceFile(files[1]!, junit(report));
  replaceFile(files[2]!, html(report));
  return files;
}
