/**
 * Hostile and broken state dict files, each built from a real torch.save
 * fixture or from scratch, with the message a reader must answer it with.
 * scripts/hostile-fixtures.ts writes them to checkpoint/fixtures/hostile/;
 * the tests check that `nadam-reference validate` refuses each with its own message.
 */
import { readFileSync } from "node:fs";
import { constants, crc32, deflateRawSync } from "node:zlib";
import { stateDictToJson } from "./json.ts";
import { readPt, writePt } from "./pt/torch-file.ts";
import type { StateDict } from "../tensor/state-dict.ts";
import { Tensor } from "../tensor/tensor.ts";
import { writeZip } from "./pt/zip.ts";

export interface HostileFixture {
  readonly file: string;
  readonly why: string;
  /** A part of the one problem the validator must report. */
  readonly expect: string;
  readonly bytes: Buffer;
}

const BASE = new URL("../golden/state-dicts/2.6.0+debian/defaults-float32-forloop.pt", import.meta.url);

/** A pickle program: PROTO 2, the given opcodes, STOP. */
function pickle(...parts: (number[] | Buffer)[]): Buffer {
  return Buffer.concat([Buffer.from([0x80, 2]), ...parts.map((p) => Buffer.from(p)), Buffer.from([0x2e])]);
}

function str(s: string): Buffer {
  const b = Buffer.from(s, "utf8");
  const header = Buffer.alloc(5);
  header[0] = 0x58;
  header.writeUInt32LE(b.length, 1);
  return Buffer.concat([header, b]);
}

function global(module: string, name: string): Buffer {
  return Buffer.from(`c${module}\n${name}\n`);
}

/** A .pt archive around a pickle, and storages. */
export function archive(pkl: Buffer, storages: Buffer[] = []): Buffer {
  return writeZip([["archive/data.pkl", pkl], ["archive/byteorder", Buffer.from("little")], ...storages.map((s, i) => [`archive/data/${i}`, s] as const), ["archive/version", Buffer.from("3\n")]]);
}

/** _rebuild_tensor_v2(('storage', torch.<type>, '0', 'cpu', numel), 0, size, stride, False, OrderedDict()) */
export function tensorPickle(storageType: string, numel: number, size: number[], stride: number[]): Buffer {
  const ints = (xs: number[]) => Buffer.concat([Buffer.from([0x28]), ...xs.map((x) => intOp(x)), Buffer.from([0x74])]);
  return Buffer.concat([
    global("torch._utils", "_rebuild_tensor_v2"),
    Buffer.from([0x28, 0x28]),
    str("storage"),
    global("torch", storageType),
    str("0"),
    str("cpu"),
    intOp(numel),
    Buffer.from([0x74, 0x51]),
    intOp(0),
    ints(size),
    ints(stride),
    Buffer.from([0x89]),
    global("collections", "OrderedDict"),
    Buffer.from([0x29, 0x52, 0x74, 0x52]),
  ]);
}

function intOp(n: number): Buffer {
  const b = Buffer.alloc(10);
  b[0] = 0x8a;
  b[1] = 8;
  b.writeBigInt64LE(BigInt(n), 2);
  return b;
}

/** {'state': {0: {'exp_avg': <tensor>}}, 'param_groups': []} with the given tensor pickle. */
export function stateWithTensor(tensor: Buffer): Buffer {
  return pickle([0x7d, 0x28], str("state"), [0x7d, 0x28, 0x4b, 0x00, 0x7d, 0x28], str("exp_avg"), tensor, [0x75, 0x75], str("param_groups"), [0x5d, 0x75]);
}

/** A list nested `depth` times, each level holding the one below twice through the memo: 2^depth leaves from a few hundred bytes. */
function laughs(depth: number): Buffer {
  const ops = [0x28, 0x5d, 0x71, 0];
  for (let i = 1; i <= depth; i++) ops.push(0x5d, 0x68, i - 1, 0x61, 0x68, i - 1, 0x61, 0x71, i);
  return Buffer.from([...ops, 0x74]); // every level, in a tuple
}

/** A list holding the memo's empty list `inner` times, itself held `outer` times: inner × outer lists from inner + outer opcodes. */
function appendFlood(inner: number, outer: number): Buffer {
  const gets = (key: number, n: number) => Array<number[]>(n).fill([0x68, key]).flat();
  return Buffer.from([0x28, 0x5d, 0x71, 0, 0x5d, 0x28, ...gets(0, inner), 0x65, 0x71, 1, 0x5d, 0x28, ...gets(1, outer), 0x65, 0x74]);
}

/** `n` MiB of zeros, deflated: a fresh deflate of 1 MiB of zeros refers to nothing before itself, so repeated it inflates to n MiB. */
function deflatedZeros(mib: number): { deflated: Buffer; crc: number; size: number } {
  const zeros = Buffer.alloc(2 ** 20);
  const block = deflateRawSync(zeros, { finishFlush: constants.Z_FULL_FLUSH });
  let crc = 0;
  for (let i = 0; i < mib; i++) crc = crc32(zeros, crc);
  return { deflated: Buffer.concat([...Array<Buffer>(mib).fill(block), Buffer.from([0x03, 0x00])]), crc, size: mib * 2 ** 20 };
}

interface RawEntry {
  readonly name: string;
  readonly method: 0 | 8;
  readonly data: Buffer;
  readonly crc: number;
  readonly size: number;
  /** More central directory entries, under these names, pointing at this entry's data. */
  readonly aliases?: readonly string[];
}

/** A zip written field by field (writeZip stores only, and never lets entries share data). */
function rawZip(entries: readonly RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  const records: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const h = Buffer.alloc(30);
    h.writeUInt32LE(0x04034b50, 0);
    h.writeUInt16LE(20, 4);
    h.writeUInt16LE(e.method, 8);
    h.writeUInt32LE(e.crc, 14);
    h.writeUInt32LE(e.data.length, 18);
    h.writeUInt32LE(e.size, 22);
    h.writeUInt16LE(name.length, 26);
    parts.push(h, name, e.data);
    for (const alias of [e.name, ...(e.aliases ?? [])]) {
      const n = Buffer.from(alias);
      const r = Buffer.alloc(46);
      r.writeUInt32LE(0x02014b50, 0);
      r.writeUInt16LE(20, 4);
      r.writeUInt16LE(20, 6);
      r.writeUInt16LE(e.method, 10);
      r.writeUInt32LE(e.crc, 16);
      r.writeUInt32LE(e.data.length, 20);
      r.writeUInt32LE(e.size, 24);
      r.writeUInt16LE(n.length, 28);
      r.writeUInt32LE(offset, 42);
      records.push(r, n);
    }
    offset += 30 + name.length + e.data.length;
  }
  const dir = Buffer.concat(records);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(records.length / 2, 8);
  end.writeUInt16LE(records.length / 2, 10);
  end.writeUInt32LE(dir.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, dir, end]);
}

const stored = (name: string, data: Buffer): RawEntry => ({ name, method: 0, data, crc: crc32(data), size: data.length });

/** A 0-d 16-bit tensor in the JSON encoding, from its bits. */
function half(bits: number, dtype: "float16" | "bfloat16"): { dtype: string; shape: number[]; data: string } {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(bits);
  return { dtype, shape: [], data: b.toString("base64") };
}

/** The base file's state dict, changed, written as a .pt by this project's writer. */
function ptFile(mutate: (sd: StateDict) => void): Buffer {
  const sd = readPt(readFileSync(BASE));
  mutate(sd);
  return writePt(sd);
}

/** The base file's JSON, changed as text (for what a parsed object cannot express: repeated keys, '__proto__', big integers). */
function jsonText(edit: (text: string) => string): Buffer {
  return Buffer.from(edit(jsonFile(() => undefined).toString("utf8")));
}

function jsonFile(mutate: (sd: Record<string, any>) => void): Buffer {
  const sd = JSON.parse(JSON.stringify(stateDictToJson(readPt(readFileSync(BASE))))) as Record<string, any>;
  mutate(sd);
  return Buffer.from(JSON.stringify(sd, null, 1));
}

export function hostileFixtures(): HostileFixture[] {
  const base = readFileSync(BASE);
  const pklAt = base.indexOf(Buffer.from([0x80, 0x02, 0x7d])); // data.pkl's first bytes: PROTO 2, EMPTY_DICT
  const corrupted = Buffer.from(base);
  corrupted[pklAt + 40] = corrupted[pklAt + 40]! ^ 0xff;
  const badCentral = Buffer.from(base);
  badCentral.writeUInt32LE(base.length + 1000, base.length - 6); // EOCD: central directory offset
  // A deflated entry that declares 2 GiB from 10 bytes: refused by ratio, nothing inflated.
  const deflated = deflateRawSync(Buffer.alloc(1000));
  const bombFile = Buffer.from(writeZip([["archive/data.pkl", deflated]]));
  const central = bombFile.lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
  bombFile.writeUInt16LE(8, central + 10); // method: deflate
  bombFile.writeUInt32LE(2 ** 31 - 1, central + 24); // uncompressed size

  const deep = pickle(Buffer.alloc(1000, 0x28)); // 1,000 open MARKs
  const cyclic = pickle([0x5d, 0x71, 0x00, 0x68, 0x00, 0x61]); // l = []; l.append(l)

  // One 32 MiB float32 storage (deflated: the file stays small), used as 41 tensors: through the memo, and rebuilt 41 times.
  const big = deflatedZeros(32);
  const bigStorage: RawEntry = { name: "archive/data/0", method: 8, data: big.deflated, crc: big.crc, size: big.size };
  const elements = big.size / 4;
  const memoShared = Buffer.concat([Buffer.from([0x5d, 0x28]), tensorPickle("FloatStorage", elements, [elements], [1]), Buffer.from([0x71, 200]), Buffer.from(Array<number[]>(40).fill([0x68, 200]).flat()), Buffer.from([0x65])]);
  const rebuilt = Buffer.concat([Buffer.from([0x5d, 0x28]), ...Array<Buffer>(41).fill(tensorPickle("FloatStorage", elements, [elements], [1])), Buffer.from([0x65])]);
  const emptyStateDict = pickle([0x7d, 0x28], str("state"), [0x7d], str("param_groups"), [0x5d, 0x75]);
  const huge = deflatedZeros(256);

  return [
    { file: "memo-laughs.pt", why: "a 'billion laughs' pickle: 40 lists, each holding the one before twice through the memo (2^40 values)", expect: "the state dict expands to more than 10000 values", bytes: archive(stateWithTensor(laughs(40))) },
    { file: "append-flood.pt", why: "a list holding one empty list 20,000 times, itself held 10,000 times: 200 million lists from 60 KB", expect: "values, more than its pickle can describe", bytes: archive(stateWithTensor(appendFlood(20_000, 10_000))) },
    { file: "memo-shared-tensor.pt", why: "one 32 MiB tensor used 41 times through the memo (a 33 KB file)", expect: "used once more brings the tensors to more than", bytes: rawZip([stored("archive/data.pkl", stateWithTensor(memoShared)), bigStorage]) },
    { file: "storage-rebuilt-41-times.pt", why: "one 32 MiB storage rebuilt into 41 tensors", expect: "over storage data/0 brings the tensors to more than", bytes: rawZip([stored("archive/data.pkl", stateWithTensor(rebuilt)), bigStorage]) },
    { file: "overlapping-entries.pt", why: "15 zip entries sharing one deflated 256 MiB entry (3.75 GiB if each were inflated)", expect: 'entries "archive/data/0" and "archive/data/1" overlap', bytes: rawZip([stored("archive/data.pkl", emptyStateDict), { name: "archive/data/0", method: 8, data: huge.deflated, crc: huge.crc, size: huge.size, aliases: Array.from({ length: 14 }, (_, i) => `archive/data/${i + 1}`) }]) },
    { file: "float16-nan-mu-product.json", why: "a 0-d float16 mu_product that is NaN (one step after loading makes every param NaN)", expect: "/state/0/mu_product: is NaN; expected a number in [0, 1]", bytes: jsonFile((sd) => (sd.state[0].mu_product = half(0x7e00, "float16"))) },
    { file: "bfloat16-negative-lr.json", why: "a 0-d bfloat16 lr of -1 (the params move uphill)", expect: "/param_groups/0/lr: is -1; expected a number >= 0", bytes: jsonFile((sd) => (sd.param_groups[0].lr = half(0xbf80, "bfloat16"))) },
    { file: "float16-fractional-step.json", why: "a 0-d float16 step of 1.5", expect: "/state/0/step: is 1.5; expected a whole number >= 0", bytes: jsonFile((sd) => (sd.state[0].step = half(0x3e00, "float16"))) },
    { file: "bfloat16-inf-mu-product.pt", why: "a 0-d bfloat16 mu_product of +Inf in a .pt (written by this project's writer, not by torch)", expect: "/state/0/mu_product: is Infinity; expected a number in [0, 1]", bytes: ptFile((sd) => (sd.state[0]!.mu_product = new Tensor("bfloat16", [], new Uint16Array([0x7f80])))) },
    { file: "float16-negative-lr.pt", why: "a 0-d float16 lr of -2 in a .pt (written by this project's writer, not by torch)", expect: "/param_groups/0/lr: is -2; expected a number >= 0", bytes: ptFile((sd) => (sd.param_groups[0]!.lr = new Tensor("float16", [], new Uint16Array([0xc000])))) },
    { file: "tensor-keys-in-state.json", why: "a state entry that also has dtype, shape and data (was read as a tensor: step() then lost 'step')", expect: "/state/0: has a tensor's keys (dtype, shape, data) and 'step'", bytes: jsonFile((sd) => Object.assign(sd.state[0], half(0, "float16"))) },
    { file: "tensor-keys-in-group.json", why: "a param group that also has dtype, shape and data", expect: "/param_groups/0: has a tensor's keys (dtype, shape, data) and 'lr'", bytes: jsonFile((sd) => Object.assign(sd.param_groups[0], half(0, "float16"))) },
    { file: "proto-key.json", why: "a param group key '__proto__' (a JavaScript object would take it as its prototype)", expect: "/param_groups/0/__proto__: is a key '__proto__'", bytes: jsonText((text) => text.replace('"params"', '"__proto__": {"lr": 10}, "params"')) },
    { file: "duplicate-key.json", why: "lr given twice in one group (JSON.parse keeps the last, silently)", expect: 'the key "lr" appears twice in the object at /param_groups/0', bytes: jsonText((text) => text.replace('"params"', '"lr": 10, "params"')) },
    { file: "huge-id.json", why: "a param id beyond 2^53 (not exact as a number; convert crashed on it)", expect: "/param_groups/0/params/0: id 9007199254740994 is beyond 2^53 - 1", bytes: jsonText((text) => text.replace(/"params": \[/, '"params": [9007199254740994, ')) },
    { file: "huge-dimension.json", why: "a tensor of shape [0, 2^53]: no elements, but a dimension no file can hold exactly", expect: "/state/0/exp_avg/shape/1: is 9007199254740992; a dimension is at most", bytes: jsonFile((sd) => { for (const key of ["exp_avg", "exp_avg_sq"]) sd.state[0][key] = { ...sd.state[0][key], shape: [0, 2 ** 53], data: "" }; }) },
    { file: "truncated.pt", why: "a real file cut in half", expect: "no end-of-central-directory record", bytes: base.subarray(0, base.length >> 1) },
    { file: "corrupted.pt", why: "one byte of data.pkl flipped", expect: "fails its CRC-32 check", bytes: corrupted },
    { file: "bad-central-directory.pt", why: "the central directory offset points past the end", expect: "runs past the end of the", bytes: badCentral },
    { file: "zip-bomb.pt", why: "a deflated entry declaring 2 GiB from a few bytes", expect: "more than deflate can produce", bytes: bombFile },
    { file: "legacy-format.pt", why: "the pre-1.6 torch.save format (a bare pickle)", expect: "legacy (torch < 1.6) torch.save format", bytes: pickle([0x4e]) },
    { file: "not-a-zip.pt", why: "a few bytes of text", expect: "12 bytes is shorter than an empty zip", bytes: Buffer.from("hello, world") },
    { file: "evil-global.pt", why: "os.system called through REDUCE", expect: "the global os.system is not allowed", bytes: archive(pickle(global("os", "system"), str("echo owned"), [0x85, 0x52])) },
    { file: "evil-opcode.pt", why: "a BUILD opcode (sets attributes: code execution in a real unpickler)", expect: "pickle opcode 0x62 (BUILD) is not allowed", bytes: archive(pickle([0x7d, 0x7d, 0x62])) },
    { file: "evil-inst.pt", why: "INST, the protocol-0 way to call a class", expect: "pickle opcode 0x69 (INST) is not allowed", bytes: archive(pickle([0x28, 0x69], Buffer.from("os\nsystem\n"))) },
    { file: "huge-shape.pt", why: "a tensor of shape [100000, 100000] over a 4-element storage", expect: "which holds 4", bytes: archive(stateWithTensor(tensorPickle("FloatStorage", 4, [100000, 100000], [100000, 1])), [Buffer.alloc(16)]) },
    { file: "expanded-tensor.pt", why: "10^9 elements over one, through stride 0 (a memory bomb)", expect: "overlapping (expanded) tensors are not read", bytes: archive(stateWithTensor(tensorPickle("FloatStorage", 1, [1e9], [0])), [Buffer.alloc(4)]) },
    { file: "storage-size-lie.pt", why: "a storage that declares 10^12 elements and holds 16 bytes", expect: "declares 1000000000000 float32 elements", bytes: archive(stateWithTensor(tensorPickle("FloatStorage", 1e12, [2], [1])), [Buffer.alloc(16)]) },
    { file: "wrong-dtype.pt", why: "an int64 tensor where NAdam keeps floats", expect: "a tensor of dtype int64", bytes: archive(stateWithTensor(tensorPickle("LongStorage", 2, [2], [1])), [Buffer.alloc(16)]) },
    { file: "deep-nesting.pt", why: "1,000 nested MARKs", expect: "nests deeper than 200 MARKs", bytes: archive(deep) },
    { file: "huge-string.pt", why: "a string that declares 2 GiB", expect: "a 2147483647-byte string; at most 1048576", bytes: archive(pickle([0x58, 0xff, 0xff, 0xff, 0x7f], Buffer.from("abc"))) },
    { file: "cyclic.pt", why: "a list that contains itself", expect: "the pickle holds a list", bytes: archive(cyclic) },
    { file: "not-a-state-dict.pt", why: "a pickle of None", expect: "without 'state' and 'param_groups'", bytes: archive(pickle([0x4e])) },
    { file: "deep-nesting.json", why: "10,000 nested arrays", expect: "JSON nests deeper than 64 levels", bytes: Buffer.from("[".repeat(10000) + "]".repeat(10000)) },
    { file: "nan-lr.json", why: "lr is NaN", expect: "/param_groups/0/lr: is NaN; expected a number >= 0", bytes: jsonFile((sd) => (sd.param_groups[0].lr = "nan")) },
    { file: "beta-out-of-range.json", why: "betas[1] = 1", expect: "/param_groups/0/betas/1: is 1; expected a number in [0, 1)", bytes: jsonFile((sd) => (sd.param_groups[0].betas = [0.9, 1])) },
    { file: "short-data.json", why: "exp_avg's data shorter than its shape", expect: "/state/0/exp_avg/data: holds 12 bytes; shape [2, 3] of float32 needs 24", bytes: jsonFile((sd) => (sd.state[0].exp_avg.data = Buffer.alloc(12).toString("base64"))) },
    { file: "shape-mismatch.json", why: "exp_avg_sq's shape differs from exp_avg's", expect: "/state/0/exp_avg_sq: has shape [3, 2], exp_avg [2, 3]", bytes: jsonFile((sd) => (sd.state[0].exp_avg_sq.shape = [3, 2])) },
    { file: "step-not-scalar.json", why: "step is a 1-d tensor", expect: "/state/0/step: has shape [1]; expected a 0-d tensor", bytes: jsonFile((sd) => (sd.state[0].step.shape = [1])) },
    { file: "duplicate-ids.json", why: "the same id twice in param_groups", expect: "/param_groups/0/params/1: id 0 also appears at /param_groups/0/params/0", bytes: jsonFile((sd) => (sd.param_groups[0].params = [0, 0])) },
    { file: "orphan-state.json", why: "state for an id no group lists", expect: "/state/7: state for id 7, which no param group lists", bytes: jsonFile((sd) => (sd.state[7] = sd.state[0])) },
    { file: "wrong-dtype.json", why: "an int64 tensor in JSON", expect: "/state/0/exp_avg/dtype: must be equal to one of the allowed values", bytes: jsonFile((sd) => (sd.state[0].exp_avg.dtype = "int64")) },
    { file: "adam.json", why: "an Adam state dict", expect: "not a NAdam state_dict: it looks like torch.optim.Adam's", bytes: jsonFile((sd) => { for (const g of sd.param_groups) g.amsgrad = false; delete sd.param_groups[0].momentum_decay; for (const s of Object.values(sd.state) as any[]) delete s.mu_product; }) },
  ];
}
