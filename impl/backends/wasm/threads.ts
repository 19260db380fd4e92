/**
 * Worker threads that step parts of one large tensor at once. The tensors are
 * already in a shared memory, so a worker needs only that memory, the
 * kernel's compiled module and the byte offsets of its part: it runs the same
 * kernel on its part while this thread runs the first part, and this thread
 * waits (Atomics.wait: the step stays synchronous) until every part is done.
 * Opt-in (wasmBackend's `threads`), Node only: workers come from
 * `process.getBuiltinModule`, so nothing here is loaded where there is none.
 */
import { KERNEL_SCALARS, stepsOnce, type StepsKernel } from "./kernels.ts";

/** The kernel's float64 arguments, which run() passes one by one: a change in their number fails to compile here. */
const ARGUMENTS: 12 = KERNEL_SCALARS.length;

/**
 * A worker's part, written by this thread into the worker's own shared control
 * block: Int32 words [generation, key, p, g, m, v, n], then the kernel's
 * float64 arguments. A step writes the words and bumps the generation, which
 * the worker waits on (Atomics.wait): no message, so nothing allocated per step.
 * A kernel's compiled module still comes by message, once per worker: a worker
 * that finds a part for a key it has no kernel of leaves its wait loop, takes
 * the message, and comes back to the part.
 */
const GENERATION = 0;
const KEY = 1;
const PART = 2; // p, g, m, v, n
const CONTROL_WORDS = 8; // 7 used, and the float64 arguments 8-byte aligned after them

/** The worker, for kernels of `argumentCount` float64 arguments: instantiates each kernel module once, runs parts, counts them done. */
const workerSource = (argumentCount: number): string => `
const { parentPort, workerData } = require("node:worker_threads");
const { memory, done, control } = workerData;
const words = new Int32Array(control, 0, ${CONTROL_WORDS});
const args = new Float64Array(control, ${CONTROL_WORDS * 4}, ${argumentCount});
const kernels = new Map();
const noHostFma = () => { throw new Error("a worker has no host fma"); };
let seen = 0;
function run(kernel) {
  const a = args;
  try {
    kernel(words[${PART}], words[${PART + 1}], words[${PART + 2}], words[${PART + 3}], words[${PART + 4}], ${Array.from({ length: argumentCount }, (_, k) => `a[${k}]`).join(", ")});
  } catch {
    Atomics.store(done, 1, 1);
  }
  Atomics.add(done, 0, 1);
  Atomics.notify(done, 0);
}
function loop() {
  for (;;) {
    Atomics.wait(words, ${GENERATION}, seen);
    const generation = Atomics.load(words, ${GENERATION});
    if (generation === seen) continue;
    const kernel = kernels.get(words[${KEY}]);
    if (kernel === undefined) return; // its module is in a message not taken yet: take it (below), then come back
    seen = generation;
    run(kernel);
  }
}
parentPort.on("message", ({ key, module }) => {
  try {
    kernels.set(key, new WebAssembly.Instance(module, { env: { memory, fmaExact64: noHostFma } }).exports.step);
  } catch {
    // the part that waits for it fails: counted done, with the failure flag
    kernels.set(key, () => { throw new Error("no kernel"); });
  }
  loop();
});
loop();
`;

interface NodeWorker {
  postMessage(message: unknown): void;
  unref(): void;
  terminate(): Promise<number>;
}
type WorkerConstructor = new (source: string, options: { eval: true; workerData: unknown }) => NodeWorker;

function workerConstructor(): WorkerConstructor | undefined {
  const process = (globalThis as { process?: { getBuiltinModule?: (id: string) => { Worker: WorkerConstructor } | undefined } }).process;
  return process?.getBuiltinModule?.("node:worker_threads")?.Worker;
}

/** How long this thread waits for a worker's part before it gives up (a worker that died would otherwise hang the step). */
const PART_TIMEOUT_MS = 60_000;
/** The longest single wait for the workers' count to change. */
const WAIT_MS = 100;

export class WorkerPool {
  private readonly workers: NodeWorker[];
  /** Per worker: the kernels (by key) whose module it has been sent. */
  private readonly known: Set<number>[];
  /** Per worker: its control block's words and float64 arguments (see GENERATION). */
  private readonly words: Int32Array[];
  private readonly args: Float64Array[];
  /** [parts done, a part failed] */
  private readonly done = new Int32Array(new SharedArrayBuffer(8));

  /** Undefined where there are no worker threads. */
  static create(count: number, memory: WebAssembly.Memory): WorkerPool | undefined {
    const Worker = workerConstructor();
    return Worker === undefined || count < 1 ? undefined : new WorkerPool(Worker, count, memory);
  }

  private constructor(Worker: WorkerConstructor, count: number, memory: WebAssembly.Memory) {
    const controls = Array.from({ length: count }, () => new SharedArrayBuffer(CONTROL_WORDS * 4 + ARGUMENTS * 8));
    this.words = controls.map((control) => new Int32Array(control, 0, CONTROL_WORDS));
    this.args = controls.map((control) => new Float64Array(control, CONTROL_WORDS * 4, ARGUMENTS));
    const source = workerSource(ARGUMENTS);
    this.workers = controls.map((control) => new Worker(source, { eval: true, workerData: { memory, done: this.done, control } }));
    for (const worker of this.workers) worker.unref(); // an idle pool does not keep the process alive
    this.known = this.workers.map(() => new Set());
  }

  /** Parts the workers have stepped. */
  parts = 0;

  get size(): number {
    return this.workers.length;
  }

  /**
   * The kernel over n elements of `bytes` bytes each at addresses p, g, m and v (int32s, as WasmHeap.addressOf gives
   * them: read unsigned), with the arguments `args`, in parts of a
   * multiple of `align` elements: the first here, the others on the workers; returns when all are done. This
   * thread's part goes through `steps` (stepsOnce, through `entry` at int32 index entryIndex; `args` in the memory, at
   * float64 index argsIndex). (p, g, m and v one by one: an array of them would be an allocation per call.)
   */
  run(key: number, module: WebAssembly.Module, steps: StepsKernel, entry: Int32Array, entryIndex: number, p: number, g: number, m: number, v: number, bytes: number, n: number, args: Float64Array, argsIndex: number, align: number): void {
    const part = Math.ceil(n / (this.workers.length + 1) / align) * align;
    Atomics.store(this.done, 0, 0);
    Atomics.store(this.done, 1, 0);
    let posted = 0;
    for (let w = 0; w < this.workers.length && (w + 1) * part < n; w++) {
      if (!this.known[w]!.has(key)) {
        this.known[w]!.add(key);
        this.workers[w]!.postMessage({ key, module });
      }
      const skip = (w + 1) * part * bytes;
      const words = this.words[w]!;
      words[KEY] = key;
      words[PART] = p + skip;
      words[PART + 1] = g + skip;
      words[PART + 2] = m + skip;
      words[PART + 3] = v + skip;
      words[PART + 4] = Math.min(part, n - (w + 1) * part);
      this.args[w]!.set(args);
      Atomics.add(words, GENERATION, 1);
      Atomics.notify(words, GENERATION);
      posted++;
    }
    stepsOnce(steps, entry, entryIndex, p, g, m, v, Math.min(part, n), argsIndex);
    // (time counted in waits that timed out, not read from a clock: Date.now() returns a new heap number, an allocation per step)
    let waited = 0;
    for (let finished = Atomics.load(this.done, 0); finished < posted; finished = Atomics.load(this.done, 0)) {
      if (waited * WAIT_MS >= PART_TIMEOUT_MS) throw new Error(`wasm-simd: ${posted - finished} worker part(s) did not finish in ${PART_TIMEOUT_MS / 1000} s`);
      if (Atomics.wait(this.done, 0, finished, WAIT_MS) === "timed-out") waited++;
    }
    if (Atomics.load(this.done, 1) !== 0) throw new Error("wasm-simd: a worker failed to step its part");
    this.parts += posted;
  }

  terminate(): void {
    for (const worker of this.workers) void worker.terminate();
  }
}
