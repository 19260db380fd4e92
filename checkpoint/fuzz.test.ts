/**
 * 2,000 damaged copies of real state dict files (torch.save'd .pt and their
 * JSON) and made-up pickles (memo sharing, long APPENDS, deep nesting, tensors
 * used many times): each is judged valid or refused, the reader never throws
 * anything else, and the whole run stays within its memory. It runs as
 * npm run fuzz does, in a child process under a heap limit; npm run fuzz runs many more.
 */
import { spawnSync } from "node:child_process";
import { expect, test } from "vitest";

/** Peak resident memory the fuzz may reach: a few times the reader's own need for the largest legitimate file here. */
const MAX_PEAK_MB = 600;

test(`2,000 damaged or made-up state dict files: valid or refused, never a crash, the process's peak memory under ${MAX_PEAK_MB} MB`, () => {
  const script = new URL("../scripts/fuzz-checkpoint.ts", import.meta.url).pathname;
  const seed = Date.now() % 2 ** 31;
  const run = spawnSync(process.execPath, ["--max-old-space-size=512", "--import", "tsx", script, "2000", String(seed)], { encoding: "utf8", timeout: 240_000 });
  console.log(run.stdout.trim());
  expect(run.stderr, `seed ${seed}`).not.toMatch(/Error|Property failed/);
  expect(run.status, `seed ${seed}: ${run.stderr.slice(-2000)}`).toBe(0);
  expect(run.stdout).toMatch(/^fuzz \(seed \d+\): 2000 files \(\d+ made up structurally\) in .*; no crash$/m);
  expect(Number(/^fuzz .*\((\d+) made up structurally\)/m.exec(run.stdout)![1])).toBeGreaterThan(500);
  const peak = Number(/^peak RSS: (\d+) MB$/m.exec(run.stdout)![1]);
  expect(peak, `seed ${seed}`).toBeLessThan(MAX_PEAK_MB);
}, 300_000);
