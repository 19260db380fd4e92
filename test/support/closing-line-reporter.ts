/**
 * Ends a vitest run with the plain closing line CI systems read:
 * "tests: N passed, N failed, N skipped".
 */
import type { Reporter, RunnerTask, RunnerTestFile } from "vitest";

function count(tasks: readonly RunnerTask[], totals: { passed: number; failed: number; skipped: number }): void {
  for (const task of tasks) {
    if (task.type === "suite") count(task.tasks, totals);
    else if (task.result?.state === "pass") totals.passed++;
    else if (task.result?.state === "fail") totals.failed++;
    else totals.skipped++;
  }
}

export default class ClosingLineReporter implements Reporter {
  onFinished(files: readonly RunnerTestFile[] = [], errors: readonly unknown[] = []): void {
    const totals = { passed: 0, failed: 0, skipped: 0 };
    count(files, totals);
    // A file that failed to load counts as failed even though it has no tests.
    totals.failed += files.filter((f) => f.result?.state === "fail" && f.tasks.length === 0).length + (errors.length > 0 ? 1 : 0);
    process.stdout.write(`\ntests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped\n`);
  }
}
