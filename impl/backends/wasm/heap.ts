/**
 * The WebAssembly memory every wasm-simd kernel works in, and its allocator.
 *
 * One shared memory per process, so that tensors allocated by any backend
 * instance can be stepped by any (and worker threads could later split a large
 * tensor). It is shared, with a preset maximum, because a shared memory grows
 * in place: typed-array views taken before a growth stay valid, so host Tensors
 * whose storage is a view into it survive later allocations. Blocks are 16-byte
 * aligned (one v128) and freed when the typed array that owns them is
 * garbage-collected.
 */

const PAGE = 65536;
const ALIGN_LOG2 = 4;
const ALIGN = 1 << ALIGN_LOG2;
/** 4 GiB, wasm32's whole address space; the largest maximum this engine accepts. */
const MAXIMUM_PAGES = 65536;

export interface Block {
  /** Byte offset in the memory. */
  readonly ptr: number;
  readonly bytes: number;
}

export class WasmHeap {
  readonly memory: WebAssembly.Memory;
  readonly maximumPages: number;
  /**
   * Marks the typed arrays this heap handed out, with their byte offset / ALIGN (a small integer: see offsetOf): a
   * property read is cheaper than a WeakSet lookup or a view's `.buffer`.
   */
  private readonly mark = Symbol("a view into the wasm-simd heap");
  /** Free ranges below `top`, sorted by start, never adjacent. */
  private readonly free: { start: number; end: number }[] = [];
  private top = ALIGN; // offset 0 is never handed out
  private readonly registry = new FinalizationRegistry<Block>((block) => this.release(block));
  f32: Float32Array;
  f64: Float64Array;

  constructor(maximumPages = MAXIMUM_PAGES) {
    this.maximumPages = maximumPages;
    this.memory = new WebAssembly.Memory({ initial: 16, maximum: maximumPages, shared: true });
    this.f32 = new Float32Array(this.memory.buffer);
    this.f64 = new Float64Array(this.memory.buffer);
  }

  /** Whether a typed array is one of this heap's views (`view` made it; any other view of the memory counts as a host array). */
  owns(view: ArrayBufferView): boolean {
    return typeof (view as unknown as Record<symbol, unknown>)[this.mark] === "number";
  }

  /**
   * The byte offset of one of this heap's views, read from its mark. Not its `byteOffset`: past the engine's small
   * integers (2^31 in Node's builds, 2^30 where V8 compresses pointers, as in Chrome) that is a boxed number, allocated
   * at each read the engine does not inline (a read that sees several kinds of typed array): 4 KB a step of a
   * 16M-element param, one read per 2^16-number chunk, in a bench process holding over 2 GiB.
   */
  offsetOf(view: ArrayBufferView): number {
    return ((view as unknown as Record<symbol, number>)[this.mark]!) * ALIGN;
  }

  /**
   * offsetOf as the kernels' int32 address: past 2^31 bytes negative (wasm reads an address unsigned), so that it
   * stays a small integer where it is returned or passed to a call the engine does not inline: a byte offset past
   * 2^31 there is a boxed number, 16 bytes each (66 bytes a step for a param split with a worker thread, measured).
   * Small integers are 32-bit in Node's builds; where V8 compresses pointers (Chrome) they are 31-bit, and an address
   * past ±2^30 is still boxed there. A shift, which wraps as it computes: a product past 2^31 would be boxed before
   * `| 0` where the code is not yet optimised.
   */
  addressOf(view: ArrayBufferView): number {
    return ((view as unknown as Record<symbol, number>)[this.mark]!) << ALIGN_LOG2;
  }

  /** A block of at least `bytes` bytes (contents unspecified). */
  allocate(bytes: number): Block {
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    const index = this.free.findIndex((r) => r.end - r.start >= size);
    if (index >= 0) {
      const range = this.free[index]!;
      const block = { ptr: range.start, bytes: size };
      range.start += size;
      if (range.start === range.end) this.free.splice(index, 1);
      return block;
    }
    const ptr = this.top;
    const end = ptr + size;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((end - have) / PAGE);
      if (have / PAGE + pages > this.maximumPages) throw new RangeError(`the wasm-simd heap is full: ${bytes} more bytes do not fit in its ${this.maximumPages * PAGE} bytes`);
      this.memory.grow(Math.max(pages, Math.ceil(have / PAGE / 4))); // by a quarter at least: fewer growths
      const buffer = this.memory.buffer;
      this.f32 = new Float32Array(buffer);
      this.f64 = new Float64Array(buffer);
    }
    this.top = end;
    return { ptr, bytes: size };
  }

  /** Give a block back at once (a block tied to an owner with `tie` is given back when its owner is collected). */
  release(block: Block): void {
    let start = block.ptr;
    let end = block.ptr + block.bytes;
    let index = this.free.findIndex((r) => r.start > start);
    if (index < 0) index = this.free.length;
    const before = this.free[index - 1];
    const after = this.free[index];
    if (after !== undefined && after.start === end) {
      end = after.end;
      this.free.splice(index, 1);
    }
    if (before !== undefined && before.end === start) {
      start = before.start;
      this.free.splice(index - 1, 1);
      index--;
    }
    if (end === this.top) this.top = start;
    else this.free.splice(index, 0, { start, end });
  }

  /** Release `block` once `owner` is garbage-collected. */
  tie(owner: object, block: Block): void {
    this.registry.register(owner, block);
  }

  /** A typed array over a new block, tied to it (the block is freed with the view). */
  view<A extends Float32ArrayConstructor | Float64ArrayConstructor | Uint16ArrayConstructor | Int32ArrayConstructor>(kind: A, length: number): InstanceType<A> {
    const block = this.allocate(length * kind.BYTES_PER_ELEMENT);
    const view = new kind(this.memory.buffer, block.ptr, length) as InstanceType<A>;
    this.tie(view, block);
    Object.defineProperty(view, this.mark, { value: block.ptr / ALIGN });
    return view;
  }

  /** Bytes handed out and not yet released (tests). */
  get used(): number {
    return this.top - ALIGN - this.free.reduce((sum, r) => sum + r.end - r.start, 0);
  }
}

let shared: WasmHeap | undefined;

/** The process's heap, created on first use. */
export function wasmHeap(): WasmHeap {
  return (shared ??= new WasmHeap());
}
