#!/usr/bin/env zx
// Regenerates golden/ from real PyTorch:  npm run golden  [-- --check]
//
// torch 2.6: Debian 13's python3-torch, in a minimal Debian 13 root made with
//   debootstrap (about 1.5 GB, created on first use, as root) under
//   $NADAM_GOLDEN_ROOT (default /var/cache/nadam-golden/trixie); or any python with
//   torch >= 2.6 named by $NADAM_TORCH_PYTHON (then no root is made).
// torch 1.13: Debian 12's python3-torch (/usr/bin/python3, installed with apt-get
//   when missing), or $NADAM_TORCH113_PYTHON; history only. NADAM_SKIP_TORCH113=1
//   leaves the committed 1.13 files as they are.
// Each torch runs the trajectories twice: ATEN_CPU_CAPABILITY=default and =avx2,
// PyTorch's two rounding profiles. Then golden/state-dicts: torch.save'd NAdam
// state dicts, and the round trip torch -> this project's reader and writer ->
// torch.load(weights_only=True) -> continued run, whose report is committed.
// Then golden/state-dicts/<torch>/dcp: NAdam state saved with
// torch.distributed.checkpoint by 1, 2 and 4 gloo ranks (torch 2.6 only, dcp.py).
// --check regenerates into a temporary folder and fails if any file differs from
// the committed corpus. --only state-dicts regenerates (or checks) golden/state-dicts
// alone, leaving the trajectory corpus as it is.
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, mkdirSync, cpSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

$.verbose = false;
const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const generator = join(repo, "scripts/golden/generate.py");
const powVectorsScript = join(repo, "scripts/golden/pow_vectors.py");
const stateDictsScript = join(repo, "scripts/golden/state_dicts.py");
const roundtripScript = join(repo, "scripts/golden/roundtrip.py");
const dcpScript = join(repo, "scripts/golden/dcp.py");
const rewriteScript = join(repo, "scripts/golden/rewrite-state-dicts.ts");
const goldenDir = join(repo, "golden");
const stateDictsDir = join(goldenDir, "state-dicts");
const dataDir = join(goldenDir, "data");
const check = argv.check === true;
const only = argv.only ?? null;
if (only !== null && only !== "state-dicts") throw new Error(`--only ${only}: the one part that runs alone is state-dicts`);
const PROFILES = [
  ["default", "default"],
  ["avx2", "vectorized"],
];

function sha256(path) {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

function walk(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

async function ensureTrixieRoot() {
  const root = process.env.NADAM_GOLDEN_ROOT ?? "/var/cache/nadam-golden/trixie";
  if (!existsSync(join(root, "usr/bin/python3"))) {
    echo(`creating a Debian 13 root with torch 2.6 in ${root} (about 1.5 GB, a few minutes)`);
    if ((await $`command -v debootstrap`.nothrow()).exitCode !== 0) {
      await $`apt-get update -q`;
      await $`apt-get install -y -q debootstrap`;
    }
    mkdirSync(dirname(root), { recursive: true });
    await $`debootstrap --variant=minbase --include=python3-torch trixie ${root}`;
  }
  // PyTorch reads /proc/cpuinfo to pick its kernels; without /proc it silently runs NO AVX.
  if ((await $`mountpoint -q ${join(root, "proc")}`.nothrow()).exitCode !== 0) {
    await $`mount -t proc proc ${join(root, "proc")}`;
  }
  return root;
}

/**
 * A runner runs one of the python scripts in scripts/golden with torch:
 * (script, { inputs, out }, capability) => the process result, as
 * `python3 script INPUT... OUT`; the script writes `out` (a file or a folder).
 */
function hostRunner(python) {
  return (script, { inputs = [], out }, capability) => $({ env: { ...process.env, ATEN_CPU_CAPABILITY: capability } })`${python} ${script} ${inputs} ${out}`;
}

async function torch26Runner() {
  if (process.env.NADAM_TORCH_PYTHON) return hostRunner(process.env.NADAM_TORCH_PYTHON);
  const root = await ensureTrixieRoot();
  return async (script, { inputs = [], out }, capability) => {
    const work = mkdtempSync(join(root, "tmp", "nadam-golden-"));
    try {
      // The scripts folder (they import each other) and the inputs, copied into the root.
      cpSync(dirname(script), join(work, "scripts"), { recursive: true });
      inputs.forEach((input, i) => cpSync(input, join(work, `in${i}`), { recursive: true }));
      const inside = "/" + relative(root, work);
      const args = inputs.map((_, i) => `${inside}/in${i}`);
      const result = await $({ env: { ...process.env, ATEN_CPU_CAPABILITY: capability } })`chroot ${root} python3 ${inside}/scripts/${basename(script)} ${args} ${inside}/out`;
      cpSync(join(work, "out"), out, { recursive: true });
      return result;
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  };
}

async function torch113Runner() {
  if (process.env.NADAM_SKIP_TORCH113) return null;
  let python = process.env.NADAM_TORCH113_PYTHON;
  if (!python) {
    python = "/usr/bin/python3";
    const probe = await $`${python} -c ${"import torch; print(torch.__version__)"}`.nothrow();
    if (probe.exitCode !== 0) {
      const release = (await $`. /etc/os-release && echo $VERSION_CODENAME`.nothrow()).stdout.trim();
      if (release !== "bookworm") {
        echo(`torch 1.13: not on Debian 12 (${release || "unknown"}); keeping the committed 1.13 files (set NADAM_TORCH113_PYTHON to regenerate them)`);
        return null;
      }
      await $`apt-get update -q`;
      await $`apt-get install -y -q python3-torch`;
    }
  }
  return hostRunner(python);
}

async function generate(runner, into) {
  const runs = [];
  for (const [capability, profile] of PROFILES) {
    const out = mkdtempSync(join(tmpdir(), "nadam-golden-out-"));
    try {
      const result = await runner(generator, { out: join(out, "cases") }, capability);
      const summary = JSON.parse(result.stdout.trim().split("\n").at(-1));
      if (summary.torch.profile !== profile) {
        throw new Error(`asked torch for ATEN_CPU_CAPABILITY=${capability} but it ran ${summary.torch.cpu_capability}`);
      }
      const target = join(into, summary.torch.version, profile);
      rmSync(target, { recursive: true, force: true });
      mkdirSync(target, { recursive: true });
      cpSync(join(out, "cases"), target, { recursive: true });
      echo(`torch ${summary.torch.version} ${profile} (${summary.torch.cpu_capability}): ${summary.written} cases, ${summary.skipped.length} not applicable`);
      runs.push({ dir: relative(into, target), ...summary });
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }
  return runs;
}

/** Whether this machine's CPU has AVX512 (torch then runs its AVX512 kernels when asked). */
function hasAvx512() {
  return existsSync("/proc/cpuinfo") && /\bavx512f\b/.test(readFileSync("/proc/cpuinfo", "utf8"));
}

/** A case file without its provenance line, to compare recordings made under two capabilities. */
function withoutProvenance(path) {
  return readFileSync(path, "utf8").replace(/^"torch": .*$/m, "");
}

/**
 * The AVX512 run: the whole catalog under ATEN_CPU_CAPABILITY=avx512, compared
 * case by case with the AVX2 run (the spec models both alike), and the cases
 * that could tell them apart (tag vector-blocks) kept, in <version>/avx512.
 */
async function generateAvx512(runner, into, avx2Run) {
  const out = mkdtempSync(join(tmpdir(), "nadam-golden-avx512-"));
  try {
    const result = await runner(generator, { out: join(out, "cases") }, "avx512");
    const summary = JSON.parse(result.stdout.trim().split("\n").at(-1));
    if (summary.torch.cpu_capability !== "AVX512") throw new Error(`asked torch for ATEN_CPU_CAPABILITY=avx512 but it ran ${summary.torch.cpu_capability}`);
    const cases = walk(join(out, "cases")).map((p) => relative(join(out, "cases"), p));
    const differing = cases.filter((c) => withoutProvenance(join(out, "cases", c)) !== withoutProvenance(join(into, avx2Run.dir, c)));
    if (differing.length > 0) throw new Error(`torch's AVX512 kernels differ from its AVX2 ones on ${differing.length} cases, e.g. ${differing.slice(0, 3).join(", ")}: the spec models them alike`);
    const target = join(into, summary.torch.version, "avx512");
    rmSync(target, { recursive: true, force: true });
    let kept = 0;
    for (const c of cases) {
      if (!JSON.parse(readFileSync(join(out, "cases", c), "utf8")).tags.includes("vector-blocks")) continue;
      mkdirSync(dirname(join(target, c)), { recursive: true });
      cpSync(join(out, "cases", c), join(target, c));
      kept++;
    }
    echo(`torch ${summary.torch.version} vectorized (AVX512): all ${cases.length} cases identical to AVX2; ${kept} kept (vector-blocks)`);
    return { dir: relative(into, target), torch: summary.torch, written: kept, skipped: [], identical_to_avx2: cases.length };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** CPython's pow on the inputs NAdam uses, from the same python as torch 2.6. */
async function generatePowVectors(runner, into) {
  const out = join(into, "..", "pow-vectors.json");
  const work = mkdtempSync(join(tmpdir(), "nadam-pow-"));
  try {
    await runner(powVectorsScript, { out: join(work, "pow-vectors.json") }, "default");
    cpSync(join(work, "pow-vectors.json"), out);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const { python, libc } = JSON.parse(readFileSync(out, "utf8"));
  echo(`pow vectors: CPython ${python}, ${libc}`);
  return { path: "golden/pow-vectors.json", sha256: sha256(out) };
}

/**
 * torch.save'd NAdam state dicts (and two of other optimizers) with their JSON
 * encodings made in Python; then the round trip: this project reads each file
 * and writes it again, and torch loads that (weights_only=True on torch 2.x),
 * compares it with the original and continues the run (roundtrip.py).
 */
async function stateDictFixtures(runner, into) {
  const work = mkdtempSync(join(tmpdir(), "nadam-state-dicts-"));
  try {
    const fixtures = join(work, "fixtures");
    const made = JSON.parse((await runner(stateDictsScript, { out: fixtures }, "default")).stdout.trim().split("\n").at(-1));
    const target = join(into, made.torch);
    rmSync(target, { recursive: true, force: true });
    mkdirSync(target, { recursive: true });
    cpSync(fixtures, target, { recursive: true });
    const rewritten = join(work, "rewritten");
    await $`tsx ${rewriteScript} ${target} ${rewritten}`;
    const report = join(work, "roundtrip.json");
    const outcome = JSON.parse((await runner(roundtripScript, { inputs: [target, rewritten], out: report }, "default")).stdout.trim().split("\n").at(-1));
    cpSync(report, join(target, "roundtrip.json"));
    echo(`state dicts, torch ${made.torch}: ${made.written.length} NAdam fixtures; read, rewritten and reloaded by torch: ${outcome.checked - outcome.failed.length} of ${outcome.checked} equal, run continued bit-identically`);
    if (outcome.failed.length > 0) throw new Error(`the round trip failed for ${outcome.failed.join(", ")}: see ${join(target, "roundtrip.json")}`);
    if (made.torch.startsWith("1.")) return { dir: relative(into, target), torch: made.torch, written: made.written };
    // DCP (torch.distributed.checkpoint) needs torch 2; its files go in <torch>/dcp.
    const dcpOut = join(work, "dcp");
    const dcp = JSON.parse((await runner(dcpScript, { out: dcpOut }, "default")).stdout.trim().split("\n").at(-1));
    if (dcp.torch !== made.torch) throw new Error(`dcp.py ran torch ${dcp.torch}, state_dicts.py ${made.torch}`);
    cpSync(dcpOut, join(target, "dcp"), { recursive: true });
    echo(`DCP checkpoints, torch ${dcp.torch}: ${dcp.written.join(", ")}`);
    return { dir: relative(into, target), torch: made.torch, written: made.written, dcp: dcp.written };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Every file under a folder (its manifest.json aside) → sha256, in path order. */
function fileHashes(into) {
  const files = {};
  for (const path of walk(into).sort()) {
    const rel = relative(into, path);
    if (rel !== "manifest.json") files[rel] = sha256(path);
  }
  return files;
}

function writeStateDictManifest(into, runs) {
  const files = fileHashes(into);
  const manifest = {
    format: "nadam-state-dict-fixtures/1",
    generators: [stateDictsScript, roundtripScript, dcpScript].map((p) => ({ path: relative(repo, p), sha256: sha256(p) })),
    runs: runs.sort((a, b) => a.dir.localeCompare(b.dir)),
    files,
  };
  writeFileSync(join(into, "manifest.json"), JSON.stringify(manifest, null, 1) + "\n");
}

function writeManifest(into, runs, powVectors) {
  const files = fileHashes(into);
  const manifest = {
    format: "nadam-golden-manifest/1",
    generator: { path: "scripts/golden/generate.py", sha256: sha256(generator) },
    pow_vectors: { generator: { path: "scripts/golden/pow_vectors.py", sha256: sha256(powVectorsScript) }, ...powVectors },
    runs: runs.sort((a, b) => a.dir.localeCompare(b.dir)),
    files,
  };
  writeFileSync(join(into, "manifest.json"), JSON.stringify(manifest, null, 1) + "\n");
}

// --check writes into <tmp>/data, so that <tmp>/pow-vectors.json sits beside it as in golden/.
const checkRoot = check ? mkdtempSync(join(tmpdir(), "nadam-golden-check-")) : null;
const into = check ? join(checkRoot, "data") : dataDir;
const stateDictsInto = check ? join(checkRoot, "state-dicts") : stateDictsDir;
mkdirSync(into, { recursive: true });
mkdirSync(stateDictsInto, { recursive: true });
const previousStateDicts = existsSync(join(stateDictsDir, "manifest.json")) ? JSON.parse(readFileSync(join(stateDictsDir, "manifest.json"), "utf8")) : { runs: [] };
const previous = existsSync(join(dataDir, "manifest.json")) ? JSON.parse(readFileSync(join(dataDir, "manifest.json"), "utf8")) : { runs: [] };
const torch26 = await torch26Runner();
const legacy = await torch113Runner();
let runs = [];
let powVectors = null;
if (only === null) {
  powVectors = await generatePowVectors(torch26, into);
  runs = await generate(torch26, into);
  if (hasAvx512()) {
    runs.push(await generateAvx512(torch26, into, runs.find((r) => r.torch.cpu_capability === "AVX2")));
  } else {
    echo("no AVX512 on this CPU: keeping the committed AVX512 run as it is");
    for (const run of previous.runs.filter((r) => r.torch.cpu_capability === "AVX512")) {
      if (into !== dataDir) cpSync(join(dataDir, run.dir), join(into, run.dir), { recursive: true });
      runs.push(run);
    }
  }
}
const stateDictRuns = [await stateDictFixtures(torch26, stateDictsInto)];
if (legacy) {
  if (only === null) runs = runs.concat(await generate(legacy, into));
  stateDictRuns.push(await stateDictFixtures(legacy, stateDictsInto));
} else {
  for (const run of previousStateDicts.runs.filter((r) => r.torch.startsWith("1."))) {
    if (stateDictsInto !== stateDictsDir) cpSync(join(stateDictsDir, run.dir), join(stateDictsInto, run.dir), { recursive: true });
    stateDictRuns.push(run);
  }
  // Keep the committed 1.13 runs (and their files) as they are.
  for (const run of previous.runs.filter((r) => r.torch.version.startsWith("1."))) {
    if (into !== dataDir) cpSync(join(dataDir, run.dir), join(into, run.dir), { recursive: true });
    runs.push(run);
  }
}
if (only === null) writeManifest(into, runs, powVectors);
writeStateDictManifest(stateDictsInto, stateDictRuns);

if (check) {
  const names = new Set();
  const differ = [];
  if (only === null) {
    const committed = JSON.parse(readFileSync(join(dataDir, "manifest.json"), "utf8"));
    const fresh = JSON.parse(readFileSync(join(into, "manifest.json"), "utf8"));
    for (const n of new Set([...Object.keys(committed.files), ...Object.keys(fresh.files)])) {
      names.add(n);
      if (committed.files[n] !== fresh.files[n]) differ.push(n);
    }
    if (committed.pow_vectors?.sha256 !== fresh.pow_vectors.sha256) differ.push("pow-vectors.json");
  }
  const committedSd = JSON.parse(readFileSync(join(stateDictsDir, "manifest.json"), "utf8"));
  const freshSd = JSON.parse(readFileSync(join(stateDictsInto, "manifest.json"), "utf8"));
  for (const n of new Set([...Object.keys(committedSd.files), ...Object.keys(freshSd.files)])) {
    names.add(`state-dicts/${n}`);
    if (committedSd.files[n] !== freshSd.files[n]) differ.push(`state-dicts/${n}`);
  }
  rmSync(checkRoot, { recursive: true, force: true });
  if (differ.length > 0) {
    echo(`${differ.length} golden files differ from a fresh run, e.g. ${differ.slice(0, 5).join(", ")}`);
    process.exit(1);
  }
  echo(`all ${names.size} golden files are identical to a fresh run of real PyTorch`);
}
