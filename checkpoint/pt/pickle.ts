/**
 * A pickle writer for state dicts, emitting the protocol-2 subset torch.save
 * itself writes, so that torch.load(weights_only=True) reads it: dicts, lists,
 * tuples, str, float, int, bool, None, and tensors as
 * torch._utils._rebuild_tensor_v2(persistent storage, 0, size, stride, False, OrderedDict()).
 */
import { DTYPE } from "../../spec/float/dtype.ts";
import { Tensor } from "../../tensor/tensor.ts";
import { LazyTensor } from "../lazy.ts";
import { PyTuple } from "./unpickle.ts";


/** A Python int (a JS number is written as a float unless wrapped). */
export class PyInt {
  constructor(readonly value: number) {}
}

export class PickleWriter {
  private readonly chunks: Buffer[] = [];
  /** The tensors met, in order: their storages become data/0, data/1, … */
  readonly storages: (Tensor | LazyTensor)[] = [];

  private op(...bytes: number[]): void {
    this.chunks.push(Buffer.from(bytes));
  }

  private raw(buffer: Buffer): void {
    this.chunks.push(buffer);
  }

  private string(s: string): void {
    const bytes = Buffer.from(s, "utf8");
    const header = Buffer.alloc(5);
    header[0] = 0x58; // BINUNICODE
    header.writeUInt32LE(bytes.length, 1);
    this.raw(header);
    this.raw(bytes);
  }

  private int(n: number): void {
    if (!Number.isSafeInteger(n)) throw new RangeError(`cannot pickle ${n} as an int`);
    if (n >= 0 && n < 256) return this.op(0x4b, n); // BININT1
    if (n >= -(2 ** 31) && n < 2 ** 31) {
      const b = Buffer.alloc(5);
      b[0] = 0x4a; // BININT
      b.writeInt32LE(n, 1);
      return this.raw(b);
    }
    const b = Buffer.alloc(10);
    b[0] = 0x8a; // LONG1, 8 bytes
    b[1] = 8;
    b.writeBigInt64LE(BigInt(n), 2);
    this.raw(b);
  }

  private float(x: number): void {
    const b = Buffer.alloc(9);
    b[0] = 0x47; // BINFLOAT, big-endian
    b.writeDoubleBE(x, 1);
    this.raw(b);
  }

  private global(module: string, name: string): void {
    this.raw(Buffer.from(`c${module}\n${name}\n`, "utf8"));
  }

  private tuple(items: readonly unknown[]): void {
    if (items.length === 0) return this.op(0x29); // EMPTY_TUPLE
    this.op(0x28); // MARK
    for (const item of items) this.value(item);
    this.op(0x74); // TUPLE
  }

  private tensor(t: Tensor | LazyTensor): void {
    const key = this.storages.length;
    this.storages.push(t);
    this.global("torch._utils", "_rebuild_tensor_v2");
    this.op(0x28); // MARK (args)
    // persistent id ('storage', torch.XStorage, key, 'cpu', numel)
    this.op(0x28);
    this.string("storage");
    this.global("torch", DTYPE[t.dtype].torchStorage.slice("torch.".length));
    this.string(String(key));
    this.string("cpu");
    this.int(t.numel);
    this.op(0x74, 0x51); // TUPLE, BINPERSID
    this.int(0); // storage offset
    const strides = t.shape.map((_, i) => t.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    this.tuple(t.shape.map((d) => new PyInt(d)));
    this.tuple(strides.map((s) => new PyInt(s)));
    this.op(0x89); // requires_grad False
    this.global("collections", "OrderedDict");
    this.op(0x29, 0x52); // (), REDUCE
    this.op(0x74, 0x52); // TUPLE, REDUCE
  }

  value(v: unknown): void {
    if (v === null || v === undefined) this.op(0x4e);
    else if (v === true) this.op(0x88);
    else if (v === false) this.op(0x89);
    else if (v instanceof PyInt) this.int(v.value);
    else if (typeof v === "number") this.float(v);
    else if (typeof v === "string") this.string(v);
    else if (v instanceof Tensor || v instanceof LazyTensor) this.tensor(v);
    else if (v instanceof PyTuple) this.tuple(v.items);
    else if (Array.isArray(v)) {
      this.op(0x5d); // EMPTY_LIST
      if (v.length > 0) {
        this.op(0x28);
        for (const item of v) this.value(item);
        this.op(0x65); // APPENDS
      }
    } else if (v instanceof Map) {
      this.op(0x7d); // EMPTY_DICT
      if (v.size > 0) {
        this.op(0x28);
        for (const [k, item] of v) {
          this.value(k);
          this.value(item);
        }
        this.op(0x75); // SETITEMS
      }
    } else if (typeof v === "object") {
      this.value(new Map(Object.entries(v)));
    } else {
      throw new TypeError(`cannot pickle a ${typeof v}`);
    }
  }

  /** The whole pickle of `root`. */
  static dump(root: unknown): { pickle: Buffer; storages: (Tensor | LazyTensor)[] } {
    const writer = new PickleWriter();
    writer.op(0x80, 2); // PROTO 2
    writer.value(root);
    writer.op(0x2e); // STOP
    return { pickle: Buffer.concat(writer.chunks), storages: writer.storages };
  }
}
