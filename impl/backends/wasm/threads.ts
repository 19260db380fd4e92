/**
 * Worker threads that step parts of one large tensor at once. The tensors are
 * already in a shared memory, so a worker needs only that memory, the
 * kernel's compiled module and the byte offsets of its part: it runs the same
 * kernel on its part while this thread runs the first part, and this thread
 * waits (Atomics.wait: the step stays synchronous) until every part is done.
 * Opt-in (wasmBackend's `threads`), Node only: workers come from
 * `process.getBuiltinModule`, so nothing here is loaded where there is none.
 */
import type { StepKernel } from "./kernels.ts";

/** The worker: instantiates each kernel module once, runs parts, counts them done. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { memory, done } = workerData;
const kernels = new Map();
const noHostFma = () => { throw new Error("a worker has no host fma"); };
parentPort.on("message", (part) => {
  try {
    if (part.module !== undefined) kernels.set(part.key, new WebAssembly.Instance(part.module, { env: { memory, fmaExact64: noHostFma } }).exports.step);
    kernels.get(part.key)(part.p, part.g, part.m, part.v, part.n, ...part.args);
  } catch {
    Atomics.store(done, 1, 1);
  }
  Atomics.add(done, 0, 1);
  Atomics.notify(done, 0);
});
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

export class WorkerPool {
  private readonly workers: NodeWorker[];
  /** Per worker: the kernels (by key) whose module it has been sent. */
  private readonly known: Set<number>[];
  /** [parts done, a part failed] */
  private readonly done = new Int32Array(new SharedArrayBuffer(8));

  /** Undefined where there are no worker threads. */
  static create(count: number, memory: WebAssembly.Memory): WorkerPool | undefined {
    const Worker = workerConstructor();
    return Worker === undefined || count < 1 ? undefined : new WorkerPool(Worker, count, memory);
  }

  private constructor(Worker: WorkerConstructor, count: number, memory: WebAssembly.Memory) {
    this.workers = Array.from({ length: count }, () => new Worker(WORKER_SOURCE, { eval: true, workerData: { memory, done: this.done } }));
    for (const worker of this.workers) worker.unref(); // an idle pool does not keep the process alive
    this.known = this.workers.map(() => new Set());
  }

  /** Parts the workers have stepped. */
  parts = 0;

  get size(): number {
    return this.workers.length;
  }

  /**
   * kernel(p, g, m, v, n, ...args) over n elements of `bytes` bytes each, in
   * parts of a multiple of `align` elements: the first here, the others on
   * the workers; returns when all are done.
   */
  run(key: number, module: WebAssembly.Module, kernel: StepKernel, [p, g, m, v]: readonly [number, number, number, number], bytes: number, n: number, args: Float64Array, align: number): void {
    const part = Math.ceil(n / (this.workers.length + 1) / align) * align;
    const list = Array.from(args);
    Atomics.store(this.done, 0, 0);
    Atomics.store(this.done, 1, 0);
    let posted = 0;
    for (let w = 0; w < this.workers.length && (w + 1) * part < n; w++) {
      const skip = (w + 1) * part * bytes;
      const send = !this.known[w]!.has(key);
      this.known[w]!.add(key);
      this.workers[w]!.postMessage({ key, module: send ? module : undefined, p: p + skip, g: g + skip, m: m + skip, v: v + skip, n: Math.min(part, n - (w + 1) * part), args: list });
      posted++;
    }
    kernel(p, g, m, v, Math.min(part, n), ...list);
    const deadline = Date.now() + PART_TIMEOUT_MS;
    for (let finished = Atomics.load(this.done, 0); finished < posted; finished = Atomics.load(this.done, 0)) {
      if (Date.now() > deadline) throw new Error(`wasm-simd: ${posted - finished} worker part(s) did not finish in ${PART_TIMEOUT_MS / 1000} s`);
      Atomics.wait(this.done, 0, finished, 100);
    }
    if (Atomics.load(this.done, 1) !== 0) throw new Error("wasm-simd: a worker failed to step its part");
    this.parts += posted;
  }

  terminate(): void {
    for (const worker of this.workers) void worker.terminate();
  }
}
