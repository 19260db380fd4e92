/**
 * Mutation fuzzing of the state dict readers: real files, damaged at random
 * (bytes flipped or overwritten, cut, spliced, repeated), must come back as
 * "valid" or as a list of problems — never as a crash, a hang or a foreign
 * exception. Shared by the test (checkpoint/fuzz.test.ts) and npm run fuzz.
 */
import fc from "fast-check";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { checkBytes } from "./files.ts";
import { archive, stateWithTensor, tensorPickle } from "./hostile.ts";
import { readZip, writeZip } from "./pt/zip.ts";

export type Mutation =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "set"; at: number; value: number }
  | { kind: "cut"; at: number }
  | { kind: "insert"; at: number; bytes: number[] }
  | { kind: "repeat"; from: number; length: number; times: number }
  | { kind: "zero"; at: number; length: number };

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant("repeat" as const), from: fc.nat(), length: fc.integer({ min: 1, max: 64 }), times: fc.integer({ min: 2, max: 50 }) }),
  fc.record({ kind: fc.constant("zero" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 32 }) }),
);

export function applyMutations(input: Buffer, mutations: readonly Mutation[]): Buffer {
  let b = Buffer.from(input);
  for (const m of mutations) {
    if (b.length === 0) break;
    const at = (n: number) => n % b.length;
    if (m.kind === "flip") b[at(m.at)] = b[at(m.at)]! ^ (1 << m.bit);
    else if (m.kind === "set") b[at(m.at)] = m.value;
    else if (m.kind === "cut") b = b.subarray(0, at(m.at));
    else if (m.kind === "insert") b = Buffer.concat([b.subarray(0, at(m.at)), Buffer.from(m.bytes), b.subarray(at(m.at))]);
    else if (m.kind === "repeat") {
      const chunk = b.subarray(at(m.from), at(m.from) + m.length);
      b = Buffer.concat([b.subarray(0, at(m.from)), ...Array<Buffer>(m.times).fill(chunk), b.subarray(at(m.from))]);
    } else b.fill(0, at(m.at), Math.min(b.length, at(m.at) + m.length));
  }
  return b;
}

/**
 * Damage only the pickle inside a .pt and zip it again with good CRCs, so that
 * the unpickler and the storage checks are reached (a damaged zip stops at its CRC).
 */
export function mutatePickle(pt: Buffer, mutations: readonly Mutation[]): Buffer {
  const entries = [...readZip(pt)].map(([name, data]) => [name, name.endsWith("/data.pkl") ? applyMutations(Buffer.from(data), mutations) : data] as const);
  return writeZip(entries);
}

/**
 * A pickle's structure, made up rather than damaged: values shared through the
 * memo, lists of many items, deep nesting, tensors used many times, in any
 * combination. What a file can describe this way is far more than its size.
 */
export type Shape =
  | { kind: "empty" }
  | { kind: "tensor"; elements: number }
  | { kind: "list"; items: Shape[] }
  | { kind: "shared"; item: Shape; times: number }
  | { kind: "nested"; item: Shape; depth: number };

export const shape: fc.Arbitrary<Shape> = fc.letrec<{ shape: Shape }>((tie) => ({
  shape: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant({ kind: "empty" as const }),
    fc.record({ kind: fc.constant("tensor" as const), elements: fc.integer({ min: 0, max: 4096 }) }),
    fc.record({ kind: fc.constant("list" as const), items: fc.array(tie("shape"), { maxLength: 4 }) }),
    fc.record({ kind: fc.constant("shared" as const), item: tie("shape"), times: fc.integer({ min: 2, max: 20_000 }) }),
    fc.record({ kind: fc.constant("nested" as const), item: tie("shape"), depth: fc.integer({ min: 1, max: 300 }) }),
  ),
})).shape;

/** The most elements any tensor of the shape has. */
function largestTensor(s: Shape): number {
  if (s.kind === "tensor") return s.elements;
  if (s.kind === "list") return Math.max(0, ...s.items.map(largestTensor));
  if (s.kind === "empty") return 0;
  return largestTensor(s.item);
}

/** The pickle opcodes of a shape; every tensor is a view of storage 0 of `storage` elements; one memo key per sharing. */
function opcodes(s: Shape, memo: { next: number }, storage: number): Buffer {
  const key32 = (op: number, key: number) => Buffer.from([op, key & 0xff, (key >> 8) & 0xff, (key >> 16) & 0xff, key >>> 24]);
  switch (s.kind) {
    case "empty":
      return Buffer.from([0x5d]);
    case "tensor":
      return tensorPickle("FloatStorage", storage, [s.elements], [1]);
    case "list":
      return Buffer.concat([Buffer.from([0x5d, 0x28]), ...s.items.map((i) => opcodes(i, memo, storage)), Buffer.from([0x65])]);
    case "shared": {
      const key = memo.next++;
      // The item once, memoized (LONG_BINPUT), then read back (LONG_BINGET) times - 1 more.
      return Buffer.concat([Buffer.from([0x5d, 0x28]), opcodes(s.item, memo, storage), key32(0x72, key), ...Array<Buffer>(s.times - 1).fill(key32(0x6a, key)), Buffer.from([0x65])]);
    }
    case "nested":
      return Buffer.concat([...Array<Buffer>(s.depth).fill(Buffer.from([0x5d, 0x28])), opcodes(s.item, memo, storage), ...Array<Buffer>(s.depth).fill(Buffer.from([0x65]))]);
  }
}

/** A .pt whose state holds the shape as exp_avg of param 0, with the one float32 storage its tensors view. */
export function structuralFile(s: Shape): Buffer {
  const storage = Math.max(1, largestTensor(s));
  return archive(stateWithTensor(opcodes(s, { next: 0 }, storage)), [Buffer.alloc(storage * 4)]);
}

export interface FuzzOutcome {
  readonly valid: boolean;
  readonly milliseconds: number;
  /** Growth of the process's resident memory during the check, in bytes (0 if it shrank). */
  readonly rssGrowth: number;
  readonly message: string;
}

/** Check one damaged file; throws only if the reader did (which the fuzz treats as a failure). */
export function fuzzOnce(name: string, bytes: Buffer): FuzzOutcome {
  const rss = process.memoryUsage.rss();
  const t0 = performance.now();
  const checked = checkBytes(name, bytes);
  const milliseconds = performance.now() - t0;
  return {
    valid: checked.skeleton !== undefined,
    milliseconds,
    rssGrowth: Math.max(0, process.memoryUsage.rss() - rss),
    message: checked.problems[0]?.message ?? "valid",
  };
}

/** The fuzz's seeds: every state dict file torch wrote (golden/state-dicts), .pt and .json. */
export function fixtureSeeds(): { name: string; bytes: Buffer }[] {
  const root = new URL("../golden/state-dicts/", import.meta.url).pathname;
  return readdirSync(root)
    .filter((d) => !d.endsWith(".json"))
    .flatMap((v) => readdirSync(join(root, v)).filter((f) => /\.(pt|json)$/.test(f) && f !== "roundtrip.json").map((f) => ({ name: f, bytes: readFileSync(join(root, v, f)) })));
}

/** Damage a seed; for a .pt, `insidePickle` damages the pickle and re-zips it, to get past the CRCs. */
export function damage(seed: { name: string; bytes: Buffer }, mutations: readonly Mutation[], insidePickle: boolean): Buffer {
  return insidePickle && seed.name.endsWith(".pt") ? mutatePickle(seed.bytes, mutations) : applyMutations(seed.bytes, mutations);
}
