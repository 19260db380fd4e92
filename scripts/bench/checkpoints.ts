/**
 * npm run bench -- checkpoints [--gib G] [--dir DIR] [--chunk-size 4M] [--keep]
 *
 * `validate` and `convert` at training scale: files over 4 GiB (zip64),
 * read through positioned reads, against `cat FILE > /dev/null` of the same
 * files in the same run (what reading them costs at all), with each
 * command's peak resident memory beside a 16 KB file's.
 *
 * The files: a .pt of one param's NAdam state written by this project's
 * streaming writer (synthetic values), and, where torch exists (the golden
 * set-up's Debian 13 root, as root, or NADAM_TORCH_PYTHON), a .pt written by
 * torch.save and a torch.distributed.checkpoint folder written by dcp.save,
 * both of a real NAdam step. --gib: the moments' size (default 4.2).
 * Timings depend on the page cache: each file is read by cat first, so all
 * commands read from the same cache state; and on the machine's load.
 */
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { writeStateDictFile } from "../../checkpoint/files.ts";
import { syntheticState } from "./synthetic-state.ts";

const args = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
};
for (const a of args) if (a.startsWith("--") && !["--gib", "--dir", "--chunk-size", "--keep"].includes(a)) throw new Error(`unknown option ${a}`);
const gib = Number(option("--gib", "4.2"));
const chunk = option("--chunk-size", "4M");
const GiB = 2 ** 30;
const MiB = 2 ** 20;
const numel = Math.round((gib * GiB) / 8); // two float32 moments
// Inside the Debian 13 root when torch runs there, so that torch reads and writes the same files.
const root = option("--dir", !process.env.NADAM_TORCH_PYTHON && existsSync(join(process.env.NADAM_GOLDEN_ROOT ?? "/var/cache/nadam-golden/trixie", "tmp")) ? join(process.env.NADAM_GOLDEN_ROOT ?? "/var/cache/nadam-golden/trixie", "tmp") : tmpdir());
const work = mkdtempSync(join(root, "nadam-checkpoint-bench-"));
const cli = new URL("../../cli/main.ts", import.meta.url).pathname;

function sizeOf(path: string): number {
  return statSync(path).isDirectory() ? readdirSync(path).reduce((s, f) => s + statSync(join(path, f)).size, 0) : statSync(path).size;
}

/** Seconds `cat` takes to read a file (or a folder's files) into /dev/null. */
function cat(path: string): number {
  const files = statSync(path).isDirectory() ? readdirSync(path).map((f) => join(path, f)) : [path];
  const t0 = performance.now();
  const run = spawnSync("sh", ["-c", 'cat "$@" > /dev/null', "cat", ...files]);
  if (run.status !== 0) throw new Error(`cat ${path}: ${run.stderr}`);
  return (performance.now() - t0) / 1000;
}

/** A CLI command in a child process: its seconds (the command alone), peak RSS above the child's own before it, exit status and output. */
function command(argv: string[]): { seconds: number; peakMiB: number; status: number; lines: string[] } {
  const script = `
    import { main } from ${JSON.stringify(cli)};
    const lines = [];
    const before = process.memoryUsage().rss;
    const t0 = performance.now();
    const status = await main(${JSON.stringify(argv)}, (l) => lines.push(l));
    const seconds = (performance.now() - t0) / 1000;
    console.log(JSON.stringify({ seconds, peak: process.resourceUsage().maxRSS * 1024 - before, status, lines }));`;
  const run = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8", maxBuffer: 2 ** 26 });
  if (run.status !== 0) throw new Error(`${argv.join(" ")}: ${run.stderr}`);
  const r = JSON.parse(run.stdout.trim().split("\n").at(-1)!) as { seconds: number; peak: number; status: number; lines: string[] };
  return { seconds: r.seconds, peakMiB: r.peak / MiB, status: r.status, lines: r.lines };
}

const script = new URL("./checkpoint_files.py", import.meta.url).pathname;
const chroot = process.env.NADAM_GOLDEN_ROOT ?? "/var/cache/nadam-golden/trixie";

/** Why torch cannot run here, or undefined when it can (the same search as the speed benchmark's). */
function noTorch(): string | undefined {
  if (process.env.NADAM_TORCH_PYTHON) return undefined;
  if (!existsSync(join(chroot, "usr/bin/python3"))) return `unavailable: no torch (set NADAM_TORCH_PYTHON, or make ${chroot} with npm run golden, as root)`;
  if (process.getuid?.() !== 0) return `unavailable: ${chroot} needs root (chroot); or set NADAM_TORCH_PYTHON`;
  return undefined;
}

/** checkpoint_files.py with `args`, its paths under `work` (inside the Debian 13 root, files live in the bench's folder, made there). */
function python(args: string[]): { status: number | null; stdout: string; stderr: string } {
  if (process.env.NADAM_TORCH_PYTHON) return spawnSync(process.env.NADAM_TORCH_PYTHON, [script, ...args], { encoding: "utf8" });
  cpSync(script, join(work, "checkpoint_files.py"));
  return spawnSync("chroot", [chroot, "python3", `/${relative(chroot, join(work, "checkpoint_files.py"))}`, ...args.map((a) => (a.startsWith(work) ? `/${relative(chroot, a)}` : a))], { encoding: "utf8" });
}

/** torch.save's and dcp.save's files of a real NAdam step, or why there are none. */
function torchFiles(): string {
  const why = noTorch();
  if (why !== undefined) return why;
  const run = python([String(numel), join(work, "torch")]);
  if (run.status !== 0) return `unavailable: torch failed: ${run.stderr.trim().split("\n").at(-1)}`;
  return run.stdout.trim().split("\n").at(-1)!;
}

try {
  console.log(`writing the files into ${work} (moments of ${(8 * numel / GiB).toFixed(2)} GiB)…`);
  const small = join(work, "small.pt");
  writeStateDictFile(small, syntheticState([1000, 1000]));
  const ours = join(work, "ours.pt");
  let t0 = performance.now();
  writeStateDictFile(ours, syntheticState([numel]));
  const oursSeconds = (performance.now() - t0) / 1000;
  console.log(`ours.pt: ${(sizeOf(ours) / GiB).toFixed(2)} GiB written by this project's streaming writer in ${oursSeconds.toFixed(1)} s (${(sizeOf(ours) / GiB / oursSeconds).toFixed(2)} GiB/s)`);
  const torchSays = torchFiles();
  console.log(`torch: ${torchSays}`);
  const inputs: [string, string][] = [["ours.pt (this writer)", ours]];
  if (existsSync(join(work, "torch", "torch.pt"))) inputs.push(["torch.pt (torch.save)", join(work, "torch", "torch.pt")], ["torch-dcp/ (dcp.save)", join(work, "torch", "torch-dcp")]);

  const base = command(["validate", "--deep", "--chunk-size", chunk, small]);
  const rows: string[][] = [["input", "GiB", "cat GiB/s", "validate GiB/s", "peak RSS MiB", "validate --deep GiB/s", "peak RSS MiB", "convert -> .pt GiB/s", "peak RSS MiB"]];
  for (const [name, path] of inputs) {
    const size = sizeOf(path);
    const catSeconds = cat(path);
    const plain = command(["validate", "--chunk-size", chunk, path]);
    const deep = command(["validate", "--deep", "--chunk-size", chunk, path]);
    if (plain.status !== 0 || deep.status !== 0) throw new Error(`${name} was not valid:\n${[...plain.lines, ...deep.lines].join("\n")}`);
    const out = join(work, "converted.pt");
    const converted = command(["convert", "--chunk-size", chunk, path, out]);
    if (converted.status !== 0) throw new Error(`convert ${name}: ${converted.lines.join("\n")}`);
    if (name.startsWith("torch-dcp")) {
      // The consolidated file, over 4 GiB and written by this project, loaded by torch beside torch.save's.
      const same = python(["--compare", join(work, "torch", "torch.pt"), out]);
      console.log(`torch.load(converted DCP .pt) vs torch.pt: ${same.status === 0 ? same.stdout.trim() : `FAILED ${same.stdout}${same.stderr}`}`);
      if (same.status !== 0) process.exitCode = 1;
    }
    rmSync(out);
    const catAgain = cat(path);
    const g = size / GiB;
    const catRate = g / Math.min(catSeconds, catAgain);
    rows.push([name, g.toFixed(2), catRate.toFixed(2), (g / plain.seconds).toFixed(2), plain.peakMiB.toFixed(0), (g / deep.seconds).toFixed(2), deep.peakMiB.toFixed(0), (g / converted.seconds).toFixed(2), converted.peakMiB.toFixed(0)]);
    console.log(deep.lines.slice(0, 2).join("\n"));
  }
  rows.push(["small.pt (16 KB)", "0.00", "", "", "", "", base.peakMiB.toFixed(0), "", ""]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  console.log(`\nchunk size ${chunk}; peak RSS: the command's process-wide peak above the process's resident memory before it (imports included)`);
  for (const r of rows) console.log(`| ${r.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`);
} finally {
  if (args.includes("--keep")) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
