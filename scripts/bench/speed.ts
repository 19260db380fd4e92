/**
 * `npm run bench`: ms per NAdam step for every built-in backend that runs here
 * × code path × profile (wasm-simd at 1 and N threads), side by side in one run with PyTorch's own NAdam
 * (foreach and for-loop, 1 and N threads; torch 2.6 where `npm run golden` made
 * its Debian 13 root, or the python named by NADAM_TORCH_PYTHON) and a fused C
 * loop compiled here (the bandwidth floor, 1 and N threads). One backend at a
 * time, each round times one step of each of its configurations, then torch's,
 * then C's: medians of interleaved rounds (torch's and C's over every backend's
 * rounds). Each backend's configurations of a shape and dtype run in a child process
 * of their own (--child-group). A baseline that cannot run here is "unavailable", with why.
 * wasm-simd runs on tensors in its own memory (made by its zeros(): stepped in
 * place, as a training loop that cares for speed keeps them) and on host tensors
 * (plain Tensors, which it stages: copied in and out through a window each step;
 * one thread only). Where this Node has the WebAssembly FP16 proposal behind its flag
 * (Node 24 and later), the bench sets the flag, and wasm-simd's float16 rows run with
 * those conversions and again without them ("float16 in software").
 *
 *   npm run bench [-- --rounds N] [--warmup N] [--shapes 4Mx1,1024x4096,16Mx1,100x10] [--only ID,ID] [--json FILE] [--rss]
 *
 * --rss: afterwards, each backend configuration alone in a child process (as many at
 * once as there are threads), its peak resident memory above its imports against its
 * tensors' bytes.
 *
 * Warm-up: before its rounds, each configuration's small twin (one param of SMALL_TWIN
 * numbers, the same backend, path, profile, dtype and placement; with worker threads,
 * of SPLIT_TWIN numbers, which they split as they split the configuration's), then
 * the configuration itself, each take up to ENGINE_WARMUP_STEPS steps or
 * ENGINE_WARMUP_MS (see warmUp):
 * the engine optimises a function only after many calls, and until then the host side
 * of a step is slower and its float arithmetic allocates (a 100 x 10 wasm-simd step
 * took 831-1,053 µs over its first 50 steps, and 18-23 from about its 700th). The
 * rounds' own WARMUP rounds come after that, for caches and for torch and the floor.
 *
 * Bytes: 7 values an element move (read p, g, m, v; write p, m, v). "allocated"
 * is the JavaScript heap and array buffers grown per step over ALLOCATION_STEPS
 * steps, after the warm-up of every configuration of the backend, shape and dtype
 * and the rounds, the fewest over up to ALLOCATION_WINDOWS such windows: what the
 * engine allocates once (a function's optimised code and its metadata, when it tiers
 * up inside a window) shows in one window only, what a step allocates in every window.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join, relative } from "node:path";
import { createInterface } from "node:readline";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { BackendEntry } from "../../impl/backend.ts";
import { BACKENDS } from "../../impl/backends/index.ts";
import { wasmBackend, wasmSimd, type WasmBackend } from "../../impl/backends/wasm/index.ts";
import { NAdam, Tensor } from "../../impl/index.ts";
import { DTYPE, type DType } from "../../spec/float/dtype.ts";
import type { RoundingProfile } from "../../spec/nadam/types.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
/**
 * The WebAssembly FP16 proposal's float16 conversions, behind a flag from Node 24: set here where this Node knows the
 * flag (before any module is compiled), so that wasm-simd's float16 rows show them, beside rows with them turned off.
 */
const FP16_FLAG = "--experimental-wasm-fp16";
const fp16Flag = spawnSync(process.execPath, [FP16_FLAG, "-e", "0"]).status === 0;
if (fp16Flag) setFlagsFromString(FP16_FLAG);

const args = process.argv.slice(2);
const option = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const ROUNDS = Number(option("--rounds") ?? 5);
const WARMUP = Number(option("--warmup") ?? 2);
const THREADS = availableParallelism();
const only = option("--only")?.split(",");
const M = 1024 * 1024;
/** wasm-simd's worker threads split a tensor from this many elements (its default): the shapes below it get no threaded row. */
const PARALLEL_ABOVE = 2 ** 20;
/** Each configuration's warm-up before its rounds (see above): steps, or milliseconds, whichever ends first. */
const ENGINE_WARMUP_STEPS = 2000;
const ENGINE_WARMUP_MS = 3000;
/** The numbers of a configuration's small twin's one param (see warmUp). */
const SMALL_TWIN = 64;
/**
 * With worker threads, the twin's numbers: a param they split (the threaded backends split from this many, which
 * splits the configurations' tensors, of PARALLEL_ABOVE numbers or more, as the default does), small enough that it
 * takes its ENGINE_WARMUP_STEPS in ENGINE_WARMUP_MS.
 */
const SPLIT_TWIN = 2 ** 16;
/** The allocation column's protocol (see above): up to ALLOCATION_STEPS steps measured, fewer where they would take more than ALLOCATION_MS (a slow backend's steps). */
const ALLOCATION_STEPS = 50;
const ALLOCATION_MS = 1000;
const ALLOCATION_WINDOWS = 4;
/**
 * The bytes a window's own measurement allocates: the first process.memoryUsage() returns an object made after it
 * read the heap, inside the window. Measured here as two readings with nothing between (the fewest of 10), and
 * taken off each window's growth.
 */
const MEASUREMENT_BYTES = (() => {
  let fewest = Infinity;
  for (let k = 0; k < 10; k++) {
    gc();
    const before = process.memoryUsage();
    fewest = Math.min(fewest, grownBetween(before, process.memoryUsage()));
  }
  return fewest;
})();
/** The JavaScript heap's and the array buffers' growth from one reading to the next, each counted where it grew. */
function grownBetween(before: NodeJS.MemoryUsage, after: NodeJS.MemoryUsage): number {
  return Math.max(0, after.heapUsed - before.heapUsed) + Math.max(0, after.arrayBuffers - before.arrayBuffers);
}
/**
 * `steps`: steps a round times back to back, per configuration (the time
 * reported is per step): one where a step takes milliseconds; at 100 x 10,
 * where it takes microseconds, a lone step would time the caches the other
 * configurations left cold, not a training loop's steady state.
 */
const ALL_SHAPES = [
  { id: "4Mx1", name: "4M x 1", count: 1, numel: 4 * M, dtypes: ["float32", "float64", "float16", "bfloat16"] as DType[], steps: 1 },
  { id: "1024x4096", name: "1,024 x 4,096", count: 1024, numel: 4096, dtypes: ["float32"] as DType[], steps: 1 },
  { id: "16Mx1", name: "16M x 1", count: 1, numel: 16 * M, dtypes: ["float32"] as DType[], steps: 1 },
  { id: "100x10", name: "100 x 10", count: 100, numel: 10, dtypes: ["float32"] as DType[], steps: 50 },
];
/** What a configuration's params, grads and two moments hold, in bytes. */
function dataBytes(shape: (typeof ALL_SHAPES)[number], dtype: DType): number {
  return 4 * shape.count * shape.numel * DTYPE[dtype].itemSize;
}
const wanted = option("--shapes")?.split(",").map((s) => s.trim());
const unknown = wanted?.filter((id) => !ALL_SHAPES.some((s) => s.id === id)) ?? [];
if (unknown.length > 0) throw new Error(`unknown shape ${unknown.join(", ")}: one of ${ALL_SHAPES.map((s) => s.id).join(", ")}`);
const SHAPES = ALL_SHAPES.filter((s) => !wanted || wanted.includes(s.id));

/**
 * A line-protocol worker (torch, the C floor, a backend group's child process): one JSON answer per command. With a
 * `prefix`, only lines that start with it are answers (a backend's library may print to stdout too). The last of its
 * stderr is kept, to say why it ended.
 */
class Worker {
  private readonly lines: AsyncIterator<string>;
  private stderrTail = "";
  constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly prefix = "",
  ) {
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (this.stderrTail = (this.stderrTail + chunk).slice(-2000)));
  }
  async read(): Promise<Record<string, unknown>> {
    for (;;) {
      const { value, done } = await this.lines.next();
      if (done) throw new Error(`the worker ended${this.why()}`);
      if (value.startsWith(this.prefix)) return JSON.parse(value.slice(this.prefix.length)) as Record<string, unknown>;
    }
  }
  /** Its stderr's last error line (else its last line), after ": "; "" where it wrote none. */
  private why(): string {
    const lines = this.stderrTail.split("\n").map((line) => line.trim()).filter((line) => line !== "");
    const line = lines.filter((l) => /Error\b/.test(l)).at(-1) ?? lines.at(-1);
    return line === undefined ? "" : `: ${line}`;
  }
  async ask(command: string): Promise<Record<string, unknown>> {
    this.child.stdin.write(command + "\n");
    return this.read();
  }
  close(): void {
    this.child.stdin.end();
  }
}

type Baseline = { worker: Worker; info: Record<string, unknown> } | { unavailable: string };

async function start(command: string, argv: string[], cwd?: string, prefix?: string): Promise<Baseline> {
  // OpenMP's threads sleep between steps instead of spinning (for up to ~0.2 s by default): spinning, they take the
  // cores from the configurations timed next in the round (100 x 10 rows moved 2-3x between runs)
  const child = spawn(command, argv, { cwd, stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, OMP_WAIT_POLICY: "passive" } });
  const worker = new Worker(child, prefix);
  const failed = new Promise<never>((_, reject) => child.on("error", reject));
  try {
    const info = await Promise.race([worker.read(), failed]);
    return { worker, info };
  } catch (e) {
    return { unavailable: `${command} did not start: ${(e as Error).message}` };
  }
}

const scratch = mkdtempSync(join(tmpdir(), "nadam-bench-"));

async function startTorch(): Promise<Baseline> {
  const script = new URL("./torch_nadam.py", import.meta.url).pathname;
  if (process.env.NADAM_TORCH_PYTHON) return start(process.env.NADAM_TORCH_PYTHON, [script]);
  const root = process.env.NADAM_GOLDEN_ROOT ?? "/var/cache/nadam-golden/trixie";
  if (!existsSync(join(root, "usr/bin/python3"))) return { unavailable: `no torch: set NADAM_TORCH_PYTHON, or make ${root} with npm run golden (as root)` };
  if (process.getuid?.() !== 0) return { unavailable: `no torch: ${root} needs root (chroot); or set NADAM_TORCH_PYTHON` };
  const inside = mkdtempSync(join(root, "tmp", "nadam-bench-"));
  copyFileSync(script, join(inside, "torch_nadam.py"));
  process.on("exit", () => rmSync(inside, { recursive: true, force: true }));
  return start("chroot", [root, "python3", `/${relative(root, inside)}/torch_nadam.py`]);
}

const FLOOR_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fopenmp"];

/**
 * The floor, compiled here. A floor whose loop stayed scalar is three times too
 * slow to be one: gcc's -fopt-info-vec says which loops it vectorized, and both
 * step functions (the lines that expand STEP) must be among them; a compiler
 * without that option (clang) leaves it unknown.
 */
async function startFloor(): Promise<Baseline> {
  const binary = join(scratch, "floor");
  const source = new URL("./floor.c", import.meta.url).pathname;
  const compile = (extra: string[]) => spawnSync("cc", [...FLOOR_FLAGS, ...extra, "-o", binary, source, "-lm"], { encoding: "utf8" });
  let compiled = compile(["-fopt-info-vec-optimized"]);
  const reported = !compiled.error && compiled.status === 0;
  if (!reported) compiled = compile([]);
  if (compiled.error || compiled.status !== 0) return { unavailable: `no C floor: cc failed (${compiled.error?.message ?? compiled.stderr.trim().split("\n")[0]})` };
  const stepLines = readFileSync(source, "utf8").split("\n").flatMap((line, k) => (line.startsWith("STEP(") ? [k + 1] : []));
  const vectorized = reported ? stepLines.every((line) => new RegExp(`floor\\.c:${line}:\\d+: optimized: loop vectorized`).test(compiled.stderr)) : "unknown";
  const floor = await start(binary, []);
  if ("worker" in floor) floor.info.vectorized = vectorized;
  return floor;
}

interface Row {
  readonly shape: string;
  readonly dtype: DType;
  readonly name: string;
  readonly kind: "backend" | "torch" | "floor";
  readonly path?: "forloop" | "foreach";
  /** A backend's id, profile and where its tensors live. */
  readonly backend?: string;
  readonly profile?: RoundingProfile;
  /** wasm-simd's float16 rounded in software where it has the FP16 conversions (its fp16 option off). */
  readonly fp16Off?: boolean;
  readonly placement?: Placement;
  readonly threads: number;
  readonly times: number[];
  /** The fewest bytes per step over the windows measured (ALLOCATION_WINDOWS). */
  allocated?: number;
  /** Each window's bytes per step, in order. */
  allocatedWindows?: number[];
  /** Steps it had taken before the allocation was measured. */
  allocationWarmup?: number;
  failed?: string;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** Where a configuration's params and grads live: "host" (plain Tensors) or "memory" (wasm-simd's, made by its zeros()). */
type Placement = "host" | "memory";
const PLACEMENT_LABEL: Readonly<Record<Placement, string>> = { host: "host", memory: "wasm memory" };

/** The placements a backend runs on: its own memory too where it has one. */
function placementsOf(backend: unknown): Placement[] {
  return backend !== null && typeof backend === "object" && "zeros" in backend ? ["memory", "host"] : ["host"];
}

/**
 * count tensors of numel numbers, written in place (a float64 array of them first would be freed memory the allocator
 * keeps, counted by --rss): host Tensors, or zeros() of the backend's memory.
 */
function filledTensors(count: number, numel: number, dtype: DType, seed: number, scale: number, placement: Placement, backend: unknown): Tensor[] {
  return Array.from({ length: count }, (_, t) => {
    const tensor = placement === "memory" ? (backend as WasmBackend).zeros([numel], dtype) : new Tensor(dtype, [numel]);
    for (let i = 0; i < tensor.data.length; i++) tensor.set(i, Math.sin((i + t + seed) * 0.37) * scale);
    return tensor;
  });
}

/** A backend of an entry, with wasm-simd's FP16 conversions turned off where `fp16Off`. */
async function backendOf(entry: (typeof BACKENDS)[number], profile: RoundingProfile, fp16Off: boolean, threads = 1): Promise<Awaited<ReturnType<(typeof BACKENDS)[number]["create"]>>> {
  if (entry.id !== wasmSimd.id) return entry.create({ profile });
  return wasmBackend({ profile, fp16: !fp16Off, ...(threads > 1 ? { threads: threads - 1, parallelAbove: SPLIT_TWIN } : {}) });
}

/**
 * --child-rss BACKEND PATH PROFILE SHAPE DTYPE PLACEMENT FP16: one configuration alone in this
 * process (spawned by --rss): the peak resident memory its steps add above the
 * process after its imports (sampled after each step), beside what its params,
 * grads and two moments hold.
 */
const child = args.indexOf("--child-rss");
if (child >= 0) {
  const [id, path, profile, shapeId, dtype, placement, fp16] = args.slice(child + 1) as [string, "forloop" | "foreach", "default" | "vectorized", string, DType, Placement, "fp16-on" | "fp16-off"];
  gc();
  // resident memory now, after the imports (the high-water mark would still hold the imports' own peak)
  const baseline = process.memoryUsage().rss;
  let peak = 0;
  const entry = BACKENDS.find((e) => e.id === id)!;
  const shape = ALL_SHAPES.find((s) => s.id === shapeId)!;
  const backend = await backendOf(entry, profile, fp16 === "fp16-off");
  const params = filledTensors(shape.count, shape.numel, dtype, 0, 0.1, placement, backend);
  params.forEach((p, i) => (p.grad = filledTensors(1, shape.numel, dtype, i + 1, 0.1, placement, backend)[0]!));
  gc();
  const optimizer = new NAdam(params, { weight_decay: 0.01, foreach: path === "foreach" }, { backend });
  peak = process.memoryUsage().rss - baseline;
  for (let k = 0; k < 4; k++) {
    await optimizer.stepAsync();
    peak = Math.max(peak, process.memoryUsage().rss - baseline);
  }
  const data = dataBytes(shape, dtype);
  console.log(JSON.stringify({ peak, data }));
  process.exit(0);
}

/** What a backend group's child process puts before each answer on stdout (its libraries may print there too). */
const ANSWER = "bench-answer ";

/**
 * --child-group BACKEND SHAPE DTYPE: one backend's configurations of a shape and dtype in this process, stepped at the
 * parent's command (the parent interleaves them with torch's and the floor's rounds), so that each group starts from a
 * fresh process and gives back all it grew: a WebAssembly memory never shrinks, ONNX Runtime and tfjs keep their
 * buffers, and one process stepping every backend in turn reached 19.3 GB resident at 16M x 1. Commands, one a line:
 *   round STEPS RECORD   STEPS steps of each configuration; RECORD 1: its time per step kept
 *   end STEPS            the allocation measured (measureAllocation), then the rows, and this process's peak resident
 *                        memory above its imports
 */
const groupAt = args.indexOf("--child-group");
if (groupAt >= 0) {
  const [id, shapeId, dtype] = args.slice(groupAt + 1) as [string, string, DType];
  const answer = (value: unknown) => process.stdout.write(`${ANSWER}${JSON.stringify(value)}\n`);
  gc();
  const rssAtStart = process.memoryUsage().rss;
  const { js, backends } = await configurations(BACKENDS.find((e) => e.id === id)!, ALL_SHAPES.find((s) => s.id === shapeId)!, dtype);
  await warmUp(js);
  answer({ ready: true, configurations: js.length });
  for await (const line of createInterface({ input: process.stdin })) {
    const [op, steps, record] = line.split(" ");
    if (op === "round") {
      await timeRound(js, Number(steps), record === "1");
      answer({ ok: true });
    } else if (op === "end") {
      await measureAllocation(js, Number(steps));
      for (const backend of backends) await backend.dispose?.();
      answer({ rows: js.map((j) => j.row), peakRss: process.resourceUsage().maxRSS * 1024 - rssAtStart });
      break;
    }
  }
  process.exit(0);
}

/** A backend group's child process (see --child-group), ready. */
async function startGroup(entry: BackendEntry, shape: (typeof ALL_SHAPES)[number], dtype: DType): Promise<Baseline> {
  const argv = [new URL(import.meta.url).pathname, "--child-group", entry.id, shape.id, dtype, "--rounds", String(ROUNDS), "--warmup", String(WARMUP)];
  return start(process.execPath, [...process.execArgv, ...argv], undefined, ANSWER);
}

const torch = await startTorch();
const floor = await startFloor();
const rows: Row[] = [];
const peaks: { shape: string; dtype: DType; backend: string; configurations: number; peakRssMiB: number; dataMiB: number }[] = [];

for (const shape of SHAPES) {
  for (const dtype of shape.dtypes) {
    const label = `${shape.name} ${dtype}`;
    const threadCounts = [...new Set([1, THREADS])];
    const torchRows: Row[] = [];
    if ("worker" in torch) {
      for (const foreach of [true, false]) {
        for (const threads of threadCounts) {
          const answer = await torch.worker.ask(JSON.stringify({ op: "setup", count: shape.count, numel: shape.numel, dtype, foreach, threads }));
          torchRows.push({ shape: shape.name, dtype, name: `torch ${String(torch.info.torch)} (${String(torch.info.capability)})`, kind: "torch", path: foreach ? "foreach" : "forloop", threads, times: [], ...(answer.ok ? {} : { failed: JSON.stringify(answer) }) });
        }
      }
    }
    const floorRows: Row[] = [];
    if ("worker" in floor && (dtype === "float32" || dtype === "float64")) {
      for (const threads of threadCounts) {
        await floor.worker.ask(`setup ${shape.count} ${shape.numel} ${dtype} ${threads}`);
        floorRows.push({ shape: shape.name, dtype, name: "fused C loop (floor)", kind: "floor", threads, times: [] });
      }
    }
    /** One round of torch's and the floor's configurations (their times kept after the warm-up rounds). */
    const baselineRound = async (round: number) => {
      for (const [baseline, baselineRows] of [[torch, torchRows], [floor, floorRows]] as const) {
        if (!("worker" in baseline) || baselineRows.length === 0) continue;
        const answer = await baseline.worker.ask(baseline === floor ? `round ${shape.steps}` : JSON.stringify({ op: "round", steps: shape.steps }));
        if (round >= WARMUP) (answer.ms as number[]).forEach((ms, k) => baselineRows[k]!.times.push(ms));
      }
    };
    // One backend's configurations at a time, in a child process of their own (see --child-group), each of its rounds
    // timing them, then torch, then the floor: torch's and the floor's times gather over every backend's rounds.
    const entries = BACKENDS.filter((entry) => (!only || only.includes(entry.id)) && entry.supports.dtypes.includes(dtype));
    const groups: BackendEntry[] = [];
    for (const entry of entries) if ((await entry.availability()).available) groups.push(entry);
    let timed = false;
    for (const entry of groups) {
      const group = await startGroup(entry, shape, dtype);
      try {
        if (!("worker" in group)) throw new Error(group.unavailable);
        for (let round = 0; round < WARMUP + ROUNDS; round++) {
          await group.worker.ask(`round ${shape.steps} ${round >= WARMUP ? 1 : 0}`);
          await baselineRound(round);
          process.stderr.write(`${label} ${entry.id}: round ${round + 1}/${WARMUP + ROUNDS}\n`);
        }
        timed = true;
        const done = await group.worker.ask(`end ${shape.steps}`);
        rows.push(...(done.rows as Row[]));
        peaks.push({ shape: shape.name, dtype, backend: entry.id, configurations: (done.rows as Row[]).length, peakRssMiB: (done.peakRss as number) / M, dataMiB: dataBytes(shape, dtype) / M });
      } catch (e) {
        // the group's child failed (out of memory, a crash): its rows are one failed row, and the run goes on
        rows.push({ shape: shape.name, dtype, name: entry.id, backend: entry.id, kind: "backend", threads: 1, times: [], failed: `child process: ${(e as Error).message}` });
      } finally {
        if ("worker" in group) group.worker.close();
      }
    }
    // (torch and the floor still timed where no backend group ran its rounds)
    if (!timed) for (let round = 0; round < WARMUP + ROUNDS; round++) await baselineRound(round);
    rows.push(...torchRows, ...floorRows);
    if ("worker" in torch) await torch.worker.ask(JSON.stringify({ op: "clear" }));
    if ("worker" in floor) await floor.worker.ask("clear");
  }
}

/** A configuration's step, and its twin's: the same but on one param of SMALL_TWIN numbers, SPLIT_TWIN with worker threads (see warmUp). */
type Configuration = { row: Row; step: () => unknown; twinStep: () => unknown };
type BenchBackend = Awaited<ReturnType<typeof backendOf>>;

/** A backend entry's configurations of a shape and dtype (every path, profile, thread count and placement), their tensors made. */
async function configurations(entry: BackendEntry, shape: (typeof ALL_SHAPES)[number], dtype: DType): Promise<{ js: Configuration[]; backends: BenchBackend[] }> {
  const js: Configuration[] = [];
  const backends: BenchBackend[] = [];
  for (const path of entry.supports.paths) {
    for (const profile of entry.supports.profiles) {
      // wasm-simd also with worker threads (THREADS in all), beside torch and the floor at N threads
      const threadCounts = entry.id === wasmSimd.id && shape.numel >= PARALLEL_ABOVE ? [...new Set([1, THREADS])] : [1];
      // wasm-simd's float16 with its FP16 conversions (where they are here), then without them (one thread)
      const fp16Choices = entry.id === wasmSimd.id && dtype === "float16" && wasmBackend().fp16.use ? [false, true] : [false];
      for (const [threads, fp16Off] of threadCounts.flatMap((t) => fp16Choices.filter((off) => t === 1 || !off).map((off) => [t, off] as const))) {
        const backend = await backendOf(entry, profile, fp16Off, threads);
        backends.push(backend);
        // host tensors at one thread only (and with the FP16 conversions): worker threads step a host tensor staged whole, and 16M x 1's configurations
        // in both placements at both thread counts outgrow the memory's 4 GiB
        for (const placement of placementsOf(backend).filter((p) => (threads === 1 && !fp16Off) || p === "memory")) {
          const params = filledTensors(shape.count, shape.numel, dtype, 0, 0.1, placement, backend);
          const grads = filledTensors(shape.count, shape.numel, dtype, 1, 0.1, placement, backend);
          params.forEach((p, i) => (p.grad = grads[i]!));
          const optimizer = new NAdam(params, { weight_decay: 0.01, foreach: path === "foreach" }, { backend });
          // (a synchronous backend's step() as a training loop calls it, and not awaited: an await would add a promise and a microtask to each step, and to its allocated bytes)
          const row: Row = { shape: shape.name, dtype, name: `${entry.id} (${profile}${fp16Off ? ", float16 in software" : ""})`, backend: entry.id, profile, fp16Off, placement, kind: "backend", path, threads, times: [] };
          // (with worker threads the twin is a param they split: that path's host code is the configuration's own)
          const twinNumel = threads > 1 ? SPLIT_TWIN : SMALL_TWIN;
          const twinParam = filledTensors(1, twinNumel, dtype, 0, 0.1, placement, backend)[0]!;
          twinParam.grad = filledTensors(1, twinNumel, dtype, 1, 0.1, placement, backend)[0]!;
          const twin = new NAdam([twinParam], { weight_decay: 0.01, foreach: path === "foreach" }, { backend });
          const stepOf = (o: NAdam) => (backend.asynchronous ? () => o.stepAsync() : () => o.step());
          js.push({ row, step: stepOf(optimizer), twinStep: stepOf(twin) });
        }
      }
    }
  }
  return { js, backends };
}

/** `steps` steps of each configuration, timed (kept where `record`); a configuration that throws is failed from then on. */
async function timeRound(js: Configuration[], steps: number, record: boolean): Promise<void> {
  for (const { row, step } of js) {
    if (row.failed) continue;
    const t0 = performance.now();
    try {
      for (let k = 0; k < steps; k++) {
        const result = step();
        if (result instanceof Promise) await result;
      }
    } catch (e) {
      row.failed = (e as Error).message.split("\n")[0];
    }
    if (record) row.times.push((performance.now() - t0) / steps);
  }
}

/**
 * Each configuration's warm-up (see ENGINE_WARMUP_STEPS), its own steps counted in allocationWarmup: first its small
 * twin's steps, which run the host code that does not depend on the tensors' size (the spec's scalars and pows, the
 * optimizer's and the backend's bookkeeping) as many times as a training process has by then (a large configuration
 * alone gets a few dozen steps in ENGINE_WARMUP_MS, and the engine optimised the spec's pow only after several
 * hundred); then its own steps.
 */
async function warmUp(js: Configuration[]): Promise<void> {
  /** Steps of `step` up to ENGINE_WARMUP_STEPS or ENGINE_WARMUP_MS: how many. */
  const warmSteps = async (step: () => unknown): Promise<number> => {
    const end = performance.now() + ENGINE_WARMUP_MS;
    let taken = 0;
    for (; taken < ENGINE_WARMUP_STEPS && performance.now() < end; taken++) {
      const result = step();
      if (result instanceof Promise) await result;
    }
    return taken;
  };
  for (const { row, step, twinStep } of js) {
    try {
      await warmSteps(twinStep);
      row.allocationWarmup = await warmSteps(step);
    } catch (e) {
      row.failed = (e as Error).message.split("\n")[0];
    }
  }
}

/** Bytes a step allocates, after the warm-up and rounds (`steps` steps each) and a full collection. */
async function measureAllocation(js: Configuration[], steps: number): Promise<void> {
  for (const { row } of js) row.allocationWarmup = (row.allocationWarmup ?? 0) + (WARMUP + ROUNDS) * steps;
  for (const { row, step } of js) {
    if (row.failed) continue;
    // a collection inside the window would hide what it freed: then again over half the steps
    const fit = Math.floor(ALLOCATION_MS / median(row.times)); // row.times: ms per step
    const windows: number[] = [];
    while (windows.length < ALLOCATION_WINDOWS && windows.at(-1) !== 0) {
      for (let measured = Number.isFinite(fit) ? Math.max(1, Math.min(ALLOCATION_STEPS, fit)) : 1; measured >= 1; measured = Math.floor(measured / 2)) {
        gc();
        const before = process.memoryUsage();
        for (let k = 0; k < measured; k++) {
          const result = step();
          if (result instanceof Promise) await result;
        }
        const after = process.memoryUsage();
        const collected = after.heapUsed < before.heapUsed || after.arrayBuffers < before.arrayBuffers;
        if (collected && measured > 1) continue;
        windows.push(Math.round(Math.max(0, grownBetween(before, after) - MEASUREMENT_BYTES) / measured));
        break;
      }
    }
    row.allocatedWindows = windows;
    row.allocated = Math.min(...windows);
  }
}

// the table
const elementsOf = (name: string) => ALL_SHAPES.find((s) => s.name === name)!;
const table = [["shape", "dtype", "implementation", "tensors", "path", "threads", "ms/step", "GB/s", "x torch foreach", "x floor", "allocated B/step"]];
const results = rows.map((r) => {
  const ms = median(r.times);
  const shape = elementsOf(r.shape);
  const bytes = 7 * shape.count * shape.numel * DTYPE[r.dtype].itemSize;
  const peer = (kind: Row["kind"], path?: string) => rows.find((o) => o.shape === r.shape && o.dtype === r.dtype && o.kind === kind && o.threads === r.threads && (path === undefined || o.path === path));
  const torchForeach = peer("torch", "foreach");
  const floorRow = peer("floor");
  return {
    ...r,
    ms,
    gbPerSecond: bytes / (ms * 1e6),
    vsTorchForeach: torchForeach ? median(torchForeach.times) / ms : null,
    vsFloor: floorRow ? ms / median(floorRow.times) : null,
  };
});
for (const r of results) {
  table.push([
    r.shape, r.dtype, r.name, r.placement === undefined ? "" : PLACEMENT_LABEL[r.placement], r.path ?? "", String(r.threads),
    r.failed ? `failed: ${r.failed}` : r.ms.toFixed(r.ms < 1 ? 4 : r.ms < 10 ? 3 : 1),
    r.failed ? "" : r.gbPerSecond.toFixed(2),
    r.vsTorchForeach === null ? "" : r.vsTorchForeach >= 1 ? `${r.vsTorchForeach.toFixed(2)}x faster` : `${(1 / r.vsTorchForeach).toFixed(1)}x slower`,
    r.vsFloor === null ? "" : `${r.vsFloor.toFixed(1)}x`,
    r.allocated === undefined ? "" : String(r.allocated),
  ]);
}
const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
console.log(`node ${process.version}, ${THREADS} threads available; median of ${ROUNDS} interleaved rounds after ${WARMUP} warm-up; lr 2e-3, weight_decay 0.01 (L2)`);
const batched = SHAPES.filter((s) => s.steps > 1);
if (batched.length > 0) console.log(`a round times ${batched.map((s) => `${s.steps} back-to-back steps at ${s.name}`).join(", ")} (per step below), one step elsewhere`);
console.log(`torch: ${"worker" in torch ? `${String(torch.info.torch)}, CPU capability ${String(torch.info.capability)}` : `unavailable (${torch.unavailable})`}`);
const vectorizedFloor = "worker" in floor ? floor.info.vectorized : undefined;
const fp16 = wasmBackend().fp16;
console.log(`wasm-simd float16: ${fp16.use ? `FP16 conversions (${FP16_FLAG}, set by the bench), and in software` : `in software (${fp16.reason})`}`);
console.log(`floor: ${"worker" in floor ? `cc ${FLOOR_FLAGS.filter((f) => f !== "-fopenmp" || floor.info.openmp).join(" ")}; its loops vectorized: ${vectorizedFloor === true ? "yes" : vectorizedFloor === false ? "NO (a scalar loop: not a floor)" : "unknown (the compiler does not say)"}` : `unavailable (${floor.unavailable})`}`);
const warmups = results.flatMap((r) => (r.allocationWarmup === undefined ? [] : [r.allocationWarmup]));
if (warmups.length > 0) {
  console.log(
    `allocated: heap + array buffers grown per step over up to ${ALLOCATION_STEPS} steps after a full collection, less the ${MEASUREMENT_BYTES} bytes a reading itself allocates, the fewest of up to ${ALLOCATION_WINDOWS} such windows (to the first 0), each configuration having taken ${Math.min(...warmups)}-${Math.max(...warmups)} steps before (after its small twin's, up to ${ENGINE_WARMUP_STEPS} steps or ${ENGINE_WARMUP_MS / 1000} s of its own, then the rounds), and every configuration of its backend, shape and dtype its own; the first window's figure is in the JSON (allocatedWindows)`,
  );
}
for (const row of table) console.log(row.map((cell, c) => (c < 6 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  "));
/** --rss: each configuration's peak resident memory above its imports, alone in a process; THREADS such processes at a time (resident memory is each process's own). */
const rss: { configuration: string; peakMiB?: number; dataMiB?: number; failed?: string }[] = [];
if (args.includes("--rss")) {
  console.log("resident memory a configuration holds above its imports (largest after a step), alone in a process, against its params + grads + state:");
  const keys = [
    ...new Set(
      results
        .filter((row) => row.kind === "backend" && !row.failed)
        .map((r) => [r.backend!, r.path!, r.profile!, ALL_SHAPES.find((s) => s.name === r.shape)!.id, r.dtype, r.placement!, r.fp16Off === true ? "fp16-off" : "fp16-on"].join(" ")),
    ),
  ];
  const measure = (key: string) =>
    new Promise<(typeof rss)[number]>((resolve) => {
      const ran = spawn(process.execPath, [...process.execArgv, new URL(import.meta.url).pathname, "--child-rss", ...key.split(" ")], { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      ran.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
      ran.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr = (stderr + chunk).slice(-2000)));
      ran.on("close", (status) => {
        if (status !== 0) return resolve({ configuration: key, failed: stderr.trim().split("\n").at(-1) ?? `exit status ${status}` });
        const answer = JSON.parse(stdout.trim().split("\n").at(-1)!) as { peak: number; data: number };
        resolve({ configuration: key, peakMiB: answer.peak / M, dataMiB: answer.data / M });
      });
    });
  let next = 0;
  await Promise.all(
    Array.from({ length: THREADS }, async () => {
      while (next < keys.length) {
        const k = next++;
        rss[k] = await measure(keys[k]!);
      }
    }),
  );
  for (const r of rss) {
    const figures = r.failed === undefined ? `${r.peakMiB!.toFixed(1)} MiB for ${r.dataMiB!.toFixed(1)} MiB of tensors (${((100 * r.peakMiB!) / r.dataMiB! - 100).toFixed(0)} % over)` : `failed: ${r.failed}`;
    console.log(`  ${r.configuration}: ${figures}`);
  }
}
for (const p of peaks) console.log(`${p.shape} ${p.dtype} ${p.backend}: its process's peak resident memory ${p.peakRssMiB.toFixed(0)} MiB above its imports, with ${p.configurations} configurations of ${p.dataMiB.toFixed(0)} MiB of params + grads + state each`);
const json = option("--json");
if (json) writeFileSync(json, JSON.stringify({ node: process.version, threads: THREADS, torch: "worker" in torch ? torch.info : torch, floor: "worker" in floor ? floor.info : floor, rounds: ROUNDS, results, peaks, rss }, null, 2));
for (const b of [torch, floor]) if ("worker" in b) b.worker.close();
rmSync(scratch, { recursive: true, force: true });
process.exit(0);
