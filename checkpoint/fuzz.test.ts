/**
 * 2,000 damaged copies of real state dict files (torch.save'd .pt and their
 * JSON) and made-up pickles (memo sharing, long APPENDS, deep nesting, tensors
 * used many times): each is judged valid or refused, the reader never throws
 * anything else, and the whole run stays within its memory. It runs as
 * npm run fuzz does, in a child process under a heap limit; npm run fuzz runs many more.
 */
import { spawn } from "node:child_process";
import { expect, test } from "vitest";

/** Peak resident memory the fuzz may reach: a few times the reader's own need for the largest legitimate file here. */
const MAX_PEAK_MB = 600;

/** A command's exit status and output, waited for without blocking this worker (a blocked worker misses the runner's calls). */
function run(command: string, args: readonly string[], timeoutMs: number): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], timeout: timeoutMs, killSignal: "SIGKILL" });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

test(`2,000 damaged or made-up state dict files: valid or refused, never a crash, the process's peak memory under ${MAX_PEAK_MB} MB`, async () => {
  const script = new URL("../scripts/fuzz-checkpoint.ts", import.meta.url).pathname;
  const seed = Date.now() % 2 ** 31;
  const fuzz = await run(process.execPath, ["--max-old-space-size=512", "--import", "tsx", script, "2000", String(seed)], 240_000);
  console.log(fuzz.stdout.trim());
  expect(fuzz.stderr, `seed ${seed}`).not.toMatch(/Error|Property failed/);
  expect(fuzz.status, `seed ${seed}: ${fuzz.stderr.slice(-2000)}`).toBe(0);
  expect(fuzz.stdout).toMatch(/^fuzz \(seed \d+\): 2000 files \(\d+ made up structurally\) in .*; no crash$/m);
  expect(Number(/^fuzz .*\((\d+) made up structurally\)/m.exec(fuzz.stdout)![1])).toBeGreaterThan(500);
  const peak = Number(/^peak RSS: (\d+) MB$/m.exec(fuzz.stdout)![1]);
  expect(peak, `seed ${seed}`).toBeLessThan(MAX_PEAK_MB);
}, 300_000);
