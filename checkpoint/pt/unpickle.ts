/**
 * A restricted unpickler for optimizer state dicts, in the spirit of
 * torch.load(weights_only=True): it executes nothing. It knows the opcodes
 * torch.save writes (pickle protocol 2, plus the protocol-4 framing ones), and
 * exactly two callables: collections.OrderedDict() and
 * torch._utils._rebuild_tensor_v2 over a persistent 'storage' reference. Any
 * other opcode or global is refused by name, and every size is bounded.
 */
import { CheckpointError } from "./errors.ts";

export interface UnpickleLimits {
  /** Longest string, in bytes. */
  readonly maxStringBytes: number;
  /** Most MARKs open at once (nesting depth of tuples, lists, dicts being built). */
  readonly maxMarkDepth: number;
  /** Most memo entries and stack items. */
  readonly maxItems: number;
}

export const DEFAULT_UNPICKLE_LIMITS: UnpickleLimits = { maxStringBytes: 1 << 20, maxMarkDepth: 200, maxItems: 5_000_000 };

/** A Python tuple (kept apart from lists until the state dict is built). */
export class PyTuple {
  constructor(readonly items: unknown[]) {}
}

/** A Python float (BINFLOAT), kept apart from ints until the state dict is built: a JS number cannot tell 1.0 from 1. */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** A reference to a module-level Python object, from GLOBAL. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  toString(): string {
    return `${this.module}.${this.name}`;
  }
}

/**
 * Classes a pickle other than a state dict's may name (DCP's metadata): by
 * name, and what constructing and building them makes. Nothing is executed:
 * the caller builds plain values.
 */
export interface PickleClasses {
  /** module.name of each global allowed. */
  readonly allowed: ReadonlySet<string>;
  /** What the pickle is, in messages about a global it may not name. */
  readonly what: string;
  /** REDUCE of an allowed global. */
  reduce(callable: PyGlobal, args: unknown[]): unknown;
  /** NEWOBJ (cls.__new__(cls, *args)) of an allowed global. */
  newObject(cls: PyGlobal, args: unknown[]): unknown;
  /** BUILD: an object made by newObject given its state. */
  build(object: unknown, state: unknown): void;
}

/** Hooks the caller provides: what a persistent id and a rebuilt tensor become, and the classes a pickle may name beyond a state dict's. */
export interface UnpickleHooks {
  persistentLoad(pid: unknown): unknown;
  rebuildTensor(args: unknown[]): unknown;
  readonly classes?: PickleClasses;
}

const ALLOWED_GLOBALS = new Set(["collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch.FloatStorage", "torch.DoubleStorage", "torch.HalfStorage", "torch.BFloat16Storage", "torch.ComplexFloatStorage", "torch.ComplexDoubleStorage", "torch.LongStorage", "torch.IntStorage", "torch.BoolStorage", "torch.ByteStorage"]);

const OPCODE_NAMES: Record<number, string> = {
  0x28: "MARK", 0x2e: "STOP", 0x30: "POP", 0x31: "POP_MARK", 0x32: "DUP", 0x46: "FLOAT", 0x49: "INT", 0x4a: "BININT", 0x4b: "BININT1", 0x4c: "LONG",
  0x4d: "BININT2", 0x4e: "NONE", 0x50: "PERSID", 0x51: "BINPERSID", 0x52: "REDUCE", 0x53: "STRING", 0x54: "BINSTRING", 0x55: "SHORT_BINSTRING",
  0x56: "UNICODE", 0x58: "BINUNICODE", 0x61: "APPEND", 0x62: "BUILD", 0x63: "GLOBAL", 0x64: "DICT", 0x7d: "EMPTY_DICT", 0x65: "APPENDS",
  0x67: "GET", 0x68: "BINGET", 0x69: "INST", 0x6a: "LONG_BINGET", 0x6c: "LIST", 0x5d: "EMPTY_LIST", 0x6f: "OBJ", 0x70: "PUT", 0x71: "BINPUT",
  0x72: "LONG_BINPUT", 0x73: "SETITEM", 0x74: "TUPLE", 0x29: "EMPTY_TUPLE", 0x75: "SETITEMS", 0x47: "BINFLOAT", 0x80: "PROTO", 0x81: "NEWOBJ",
  0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4", 0x85: "TUPLE1", 0x86: "TUPLE2", 0x87: "TUPLE3", 0x88: "NEWTRUE", 0x89: "NEWFALSE", 0x8a: "LONG1",
  0x8b: "LONG4", 0x8c: "SHORT_BINUNICODE", 0x8d: "BINUNICODE8", 0x8e: "BINBYTES8", 0x8f: "EMPTY_SET", 0x90: "ADDITEMS", 0x91: "FROZENSET",
  0x92: "NEWOBJ_EX", 0x93: "STACK_GLOBAL", 0x94: "MEMOIZE", 0x95: "FRAME", 0x42: "BINBYTES", 0x43: "SHORT_BINBYTES",
};

export function unpickle(data: Uint8Array, hooks: UnpickleHooks, limits: UnpickleLimits = DEFAULT_UNPICKLE_LIMITS, name = "data.pkl"): unknown {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const text = new TextDecoder("utf-8", { fatal: true });
  let at = 0;
  let stack: unknown[] = [];
  const marks: unknown[][] = [];
  const memo = new Map<number, unknown>();

  const fail = (message: string): never => {
    throw new CheckpointError(`${name}, byte ${at}: ${message}`);
  };
  const take = (n: number): Uint8Array => {
    if (n < 0 || at + n > data.length) fail(`needs ${n} more bytes, the pickle ends at ${data.length} (truncated?)`);
    const out = data.subarray(at, at + n);
    at += n;
    return out;
  };
  const u8 = () => take(1)[0]!;
  const u16 = () => (take(2), view.getUint16(at - 2, true));
  const u32 = () => (take(4), view.getUint32(at - 4, true));
  const pop = (): unknown => (stack.length === 0 ? fail("pops an empty stack") : stack.pop());
  const push = (x: unknown): void => {
    if (stack.length >= limits.maxItems) fail(`more than ${limits.maxItems} items on the stack`);
    stack.push(x);
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const outer = marks.pop();
    if (outer === undefined) fail("closes a MARK that was never opened");
    stack = outer!;
    return items;
  };
  const str = (n: number): string => {
    if (n > limits.maxStringBytes) fail(`a ${n}-byte string; at most ${limits.maxStringBytes} are accepted`);
    try {
      return text.decode(take(n));
    } catch {
      return fail("a string that is not UTF-8");
    }
  };
  const put = (key: number): void => {
    if (memo.size >= limits.maxItems) fail(`more than ${limits.maxItems} memo entries`);
    memo.set(key, stack.length === 0 ? fail("memoizes an empty stack") : stack[stack.length - 1]);
  };
  const get = (key: number): void => push(memo.has(key) ? memo.get(key) : fail(`reads memo entry ${key}, which was never written`));
  const top = (): unknown => (stack.length === 0 ? fail("needs a value on the stack") : stack[stack.length - 1]);
  const asDict = (x: unknown): Map<unknown, unknown> => (x instanceof Map ? x : fail(`sets items on a ${typeName(x)}, not a dict`));
  const asList = (x: unknown): unknown[] => (Array.isArray(x) ? x : fail(`appends to a ${typeName(x)}, not a list`));
  const classes = hooks.classes;
  const allowedGlobal = (g: PyGlobal): PyGlobal => {
    if (ALLOWED_GLOBALS.has(g.toString()) || classes?.allowed.has(g.toString())) return g;
    return fail(`the global ${g} is not allowed (${classes?.what ?? "a state dict needs only tensors, OrderedDict and storages"})`);
  };
  // The caller's classes may key a dict by an object they made (DCP's MetadataIndex); a state dict only by str and int.
  const key = (k: unknown): unknown =>
    typeof k === "string" || typeof k === "number" || (classes !== undefined && typeof k === "object" && k !== null && !(k instanceof Map) && !Array.isArray(k)) ? k : fail(`a dict key of type ${typeName(k)}; only str and int keys are read`);

  for (;;) {
    const opcode = u8();
    switch (opcode) {
      case 0x80: // PROTO
        if (u8() > 5) fail("an unknown pickle protocol");
        break;
      case 0x95: // FRAME: a length hint, nothing to do
        take(8);
        break;
      case 0x7d: // EMPTY_DICT
        push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        push(new PyTuple([]));
        break;
      case 0x28: // MARK
        if (marks.length >= limits.maxMarkDepth) fail(`nests deeper than ${limits.maxMarkDepth} MARKs`);
        marks.push(stack);
        stack = [];
        break;
      case 0x71: // BINPUT
        put(u8());
        break;
      case 0x72: // LONG_BINPUT
        put(u32());
        break;
      case 0x94: // MEMOIZE
        put(memo.size);
        break;
      case 0x68: // BINGET
        get(u8());
        break;
      case 0x6a: // LONG_BINGET
        get(u32());
        break;
      case 0x4a: // BININT
        take(4);
        push(view.getInt32(at - 4, true));
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x8a: {
        // LONG1: little-endian two's complement of n bytes
        const n = u8();
        if (n > 8) fail(`an integer of ${n} bytes; at most 8 are read`);
        let value = 0n;
        const bytes = take(n);
        for (let i = n - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]!);
        if (n > 0 && bytes[n - 1]! & 0x80) value -= 1n << BigInt(8 * n);
        if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < -BigInt(Number.MAX_SAFE_INTEGER)) fail(`the integer ${value} is beyond 2^53`);
        push(Number(value));
        break;
      }
      case 0x47: // BINFLOAT: big-endian float64
        take(8);
        push(new PyFloat(view.getFloat64(at - 8, false)));
        break;
      case 0x58: // BINUNICODE
        push(str(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(str(u8()));
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x74: // TUPLE
        push(new PyTuple(popMark()));
        break;
      case 0x85: // TUPLE1
        push(new PyTuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        push(new PyTuple([pop(), b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        push(new PyTuple([pop(), b, c]));
        break;
      }
      case 0x61: {
        // APPEND
        const item = pop();
        asList(top()).push(item);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const list = asList(top());
        for (const item of items) list.push(item); // not push(...items): a long spread overflows the call stack
        break;
      }
      case 0x73: {
        // SETITEM
        const value = pop();
        const k = key(pop());
        asDict(top()).set(k, value);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        if (items.length % 2 !== 0) fail("SETITEMS with an odd number of items");
        const dict = asDict(top());
        for (let i = 0; i < items.length; i += 2) dict.set(key(items[i]), items[i + 1]);
        break;
      }
      case 0x63: {
        // GLOBAL "module\nname\n"
        const line = (): string => {
          const end = data.indexOf(0x0a, at);
          if (end < 0 || end - at > 256) fail("a GLOBAL without its newline-terminated name");
          return str(end - at + 1).slice(0, -1);
        };
        push(allowedGlobal(new PyGlobal(line(), line())));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") fail("STACK_GLOBAL of non-strings");
        push(allowedGlobal(new PyGlobal(module as string, name as string)));
        break;
      }
      case 0x51: // BINPERSID
        push(hooks.persistentLoad(pop()));
        break;
      case 0x52: {
        // REDUCE: only the two allowed callables
        const args = pop();
        const callable = pop();
        if (!(callable instanceof PyGlobal) || !(args instanceof PyTuple)) fail(`REDUCE of ${typeName(callable)} with ${typeName(args)}`);
        const name = (callable as PyGlobal).toString();
        if (name === "collections.OrderedDict") {
          if ((args as PyTuple).items.length !== 0) fail("OrderedDict called with arguments");
          push(new Map());
        } else if (name === "torch._utils._rebuild_tensor_v2") {
          push(hooks.rebuildTensor((args as PyTuple).items));
        } else if (classes?.allowed.has(name)) {
          push(classes.reduce(callable as PyGlobal, (args as PyTuple).items));
        } else {
          fail(`${name} cannot be called`);
        }
        break;
      }
      case 0x81: {
        // NEWOBJ: only of the caller's classes
        if (classes === undefined) fail("pickle opcode 0x81 (NEWOBJ) is not allowed in a state dict");
        const args = pop();
        const cls = pop();
        if (!(cls instanceof PyGlobal) || !(args instanceof PyTuple) || !classes!.allowed.has(cls.toString())) fail(`NEWOBJ of ${typeName(cls)} with ${typeName(args)}`);
        push(classes!.newObject(cls as PyGlobal, (args as PyTuple).items));
        break;
      }
      case 0x62: {
        // BUILD: only of what the caller's classes made
        if (classes === undefined) fail("pickle opcode 0x62 (BUILD) is not allowed in a state dict");
        const state = pop();
        classes!.build(top(), state);
        break;
      }
      case 0x2e: {
        // STOP
        if (marks.length !== 0) fail("stops with a MARK still open");
        const result = pop();
        if (stack.length !== 0) fail(`stops with ${stack.length} values left on the stack`);
        return result;
      }
      default:
        fail(`pickle opcode 0x${opcode.toString(16).padStart(2, "0")} (${OPCODE_NAMES[opcode] ?? "unknown"}) is not allowed in a state dict`);
    }
  }
}

export function typeName(x: unknown): string {
  if (x === null) return "None";
  if (x instanceof PyTuple) return "tuple";
  if (x instanceof PyFloat) return "float";
  if (x instanceof Map) return "dict";
  if (Array.isArray(x)) return "list";
  if (x instanceof PyGlobal) return `global ${x}`;
  return typeof x === "object" ? (x.constructor?.name ?? "object") : typeof x;
}
