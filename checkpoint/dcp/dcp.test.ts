/**
 * torch.distributed.checkpoint folders written by real torch 2.6 (npm run
 * golden: scripts/golden/dcp.py): each read as one logical state dict, equal
 * to the one Python gathered (full_tensor()) and to torch's own
 * dcp_to_torch_save consolidation; and damaged copies refused with messages
 * naming the file, the tensor and the byte range.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { main } from "../../cli/main.ts";
import { Tensor } from "../../tensor/tensor.ts";
import { checkFile, loadStateDictFile, openStateDict } from "../files.ts";
import { decodeValue } from "../json.ts";
import { materialize } from "../lazy.ts";
import { FileSource, sliceSource } from "../pt/source.ts";
import { openTorchFile, StoredTensor } from "../pt/torch-file.ts";
import { chunkKey, readMetadata } from "./metadata.ts";
import { sharedBytes, tilingProblem } from "./read.ts";

const fixtures = new URL("../../golden/state-dicts/2.6.0+debian/dcp/", import.meta.url).pathname;
const folders = readdirSync(fixtures).filter((f) => statSync(join(fixtures, f)).isDirectory());
const work = mkdtempSync(join(tmpdir(), "nadam-dcp-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A state dict's values with tensors as their dtype, shape and bytes, keyed by param name: comparable whatever ids it was read with. */
function byName(sd: { state: Record<string, Record<string, unknown>>; param_groups: Record<string, unknown>[] }): unknown {
  const plain = (v: unknown): unknown => (v instanceof Tensor ? { dtype: v.dtype, shape: [...v.shape], bytes: Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength).toString("hex") } : v);
  const names = sd.param_groups.flatMap((g) => (g.param_names as string[] | undefined) ?? (g.params as string[]));
  const ids = sd.param_groups.flatMap((g) => g.params as (number | string)[]);
  const state = Object.fromEntries(Object.entries(sd.state).map(([id, entry]) => [names[ids.findIndex((i) => String(i) === id)] ?? id, Object.fromEntries(Object.entries(entry).map(([k, v]) => [k, plain(v)]))]));
  const groups = sd.param_groups.map((g) => Object.fromEntries(Object.entries(g).filter(([k]) => k !== "params" && k !== "param_names").map(([k, v]) => [k, v])));
  return { state, groups, names };
}

describe("DCP folders from real torch 2.6", () => {
  test("the fixtures are there: several ranks, Shard(0) and Shard(1), replicated, HSDP (Replicate, Shard(0)), one process", () => {
    expect(folders.sort()).toEqual(expect.arrayContaining(["shard0-2ranks", "shard1-4ranks", "replicated-2ranks", "hsdp-2x2", "single-process", "groups-dtypes-2ranks", "flattened-2ranks", "ids-2ranks"]));
    expect(readdirSync(join(fixtures, "shard1-4ranks")).filter((f) => f.endsWith(".distcp"))).toHaveLength(4);
  });

  test.each(folders)("%s: valid as one state dict, equal (read 16 bytes at a time) to the one torch gathered and to dcp_to_torch_save's", (folder) => {
    const opened = openStateDict(join(fixtures, folder), { deep: true, chunkBytes: 16 });
    try {
      expect(opened.problems).toEqual([]);
      expect(opened.kind).toBe("dcp");
      expect(opened.at).toBe(folder.startsWith("flattened") ? "optimizer" : "optim");
      const ours = byName(materialize(opened.skeleton!) as never);
      const expected = JSON.parse(readFileSync(join(fixtures, `${folder}.expected.json`), "utf8")) as { state: Record<string, Record<string, unknown>>; param_groups: Record<string, unknown>[] };
      const decoded = { state: Object.fromEntries(Object.entries(expected.state).map(([k, v]) => [k, decodeValue(v) as Record<string, unknown>])), param_groups: expected.param_groups.map((g) => decodeValue(g) as Record<string, unknown>) };
      expect(ours).toEqual(byName(decoded));
      expect(ours).toEqual(byName(loadStateDictFile(join(fixtures, `${folder}.consolidated.pt`)) as never));
    } finally {
      opened.close();
    }
  });

  test("optimizer.state_dict() saved with DCP (int ids, which DCP keeps as strings) reads with its int ids, said in a note", () => {
    const opened = openStateDict(join(fixtures, "ids-2ranks"));
    try {
      expect(opened.problems).toEqual([]);
      expect(Object.keys(opened.skeleton!.state)).toEqual(["0", "1"]);
      expect(opened.skeleton!.param_groups.map((g) => g.params)).toEqual([[0], [1]]);
      expect(opened.losses!.map((l) => l.what)).toContain("2 state keys saved as strings (torch.distributed.checkpoint keeps dict keys as strings) read as the int ids param_groups lists");
    } finally {
      opened.close();
    }
  });

  test("get_optimizer_state_dict's FQN-keyed state dict saved as one .pt reads with ids in param_groups order and the names in param_names", () => {
    const sd = loadStateDictFile(join(fixtures, "fqn-keyed.pt"));
    const expected = JSON.parse(readFileSync(join(fixtures, "fqn-keyed.expected.json"), "utf8")) as { state: Record<string, Record<string, unknown>>; param_groups: Record<string, unknown>[] };
    expect(sd.param_groups.flatMap((g) => g.param_names)).toEqual(expected.param_groups.flatMap((g) => g.params));
    expect(sd.param_groups.flatMap((g) => g.params)).toEqual(expected.param_groups.flatMap((g, i) => (g.params as string[]).map((_, k) => expected.param_groups.slice(0, i).reduce((n, h) => n + (h.params as string[]).length, 0) + k)));
  });

  test("convert DIR out.pt and out.json: consolidated, streamed, read back equal; the .pt is a plain optimizer state dict", async () => {
    const dir = join(fixtures, "shard1-4ranks");
    const lines: string[] = [];
    expect(await main(["convert", "--chunk-size", "16", dir, join(work, "out.pt")], (l) => lines.push(l))).toBe(0);
    expect(lines.join("\n")).toContain("state keyed by param name");
    expect(await main(["convert", dir, join(work, "out.json")], () => undefined)).toBe(0);
    const fromDcp = materialize(openStateDict(dir).skeleton!);
    expect(byName(loadStateDictFile(join(work, "out.pt")) as never)).toEqual(byName(fromDcp as never));
    expect(byName(loadStateDictFile(join(work, "out.json")) as never)).toEqual(byName(fromDcp as never));
    expect(checkFile(join(work, "out.pt")).at).toBeUndefined();
  });
});

/** A copy of a fixture folder to damage. */
function copy(folder: string): string {
  const to = mkdtempSync(join(work, `${folder}-`));
  cpSync(join(fixtures, folder), to, { recursive: true });
  return to;
}

/** Where a chunk's item and its first storage's data lie: file, item range, data offset in the file. */
function locate(dir: string, key: string, offsets: number[]): { file: string; from: number; to: number; data: number } {
  const info = readMetadata(readFileSync(join(dir, ".metadata"))).storage.get(chunkKey(key, offsets))!;
  const source = new FileSource(join(dir, info.file));
  try {
    const t = openTorchFile(sliceSource(source, info.offset, info.length, "item")).root as StoredTensor;
    return { file: info.file, from: info.offset, to: info.offset + info.length, data: info.offset + t.storage.entry.dataStart };
  } finally {
    source.close();
  }
}

const messages = (path: string) => checkFile(path).problems.map((p) => `${p.path}: ${p.message}`).join("\n");

describe("damaged DCP folders are refused, naming the file, the tensor and the byte range", () => {
  const key = "optim.state.layer.weight.exp_avg";

  test("a missing shard", () => {
    const dir = copy("shard0-2ranks");
    unlinkSync(join(dir, "__1_0.distcp"));
    expect(messages(dir)).toMatch(/optim\.state\.[\w.]+, chunk at offsets \[\d+(, \d+)*\], at bytes \d+-\d+, is in __1_0\.distcp, which is missing from the folder/);
  });

  test("a truncated shard", () => {
    const dir = copy("shard0-2ranks");
    const size = statSync(join(dir, "__1_0.distcp")).size;
    truncateSync(join(dir, "__1_0.distcp"), Math.floor(size / 2));
    expect(messages(dir)).toMatch(new RegExp(`__1_0\\.distcp bytes \\d+-\\d+ \\(optim\\.state\\.[\\w.]+(, chunk at offsets \\[[\\d, ]*\\])?\\): past the end of __1_0\\.distcp, which has ${Math.floor(size / 2)} bytes \\(a truncated shard\\)`));
  });

  test("a flipped byte in a chunk's data fails its CRC-32, said with the file, the item's range and the chunk", () => {
    const dir = copy("shard0-2ranks");
    const at = locate(dir, key, [3, 0]);
    const bytes = readFileSync(join(dir, at.file));
    bytes[at.data + 1]! ^= 0x40;
    writeFileSync(join(dir, at.file), bytes);
    expect(messages(dir)).toContain(`${at.file} bytes ${at.from}-${at.to} (${key}, chunk at offsets [3, 0]): not a valid .pt zip archive: entry`);
    expect(messages(dir)).toContain("fails its CRC-32 check (corrupted)");
    // With --deep the damaged tensor is said once, the other values still checked.
    const deep = checkFile(dir, { deep: true }).problems;
    expect(deep).toHaveLength(1);
    expect(deep[0]).toEqual({ path: "/state/0/exp_avg", message: expect.stringContaining(`${at.file} bytes ${at.from}-${at.to} (${key}, chunk at offsets [3, 0]): not a valid .pt zip archive`) as string });
    // convert refuses it and writes nothing
    const lines: string[] = [];
    return main(["convert", dir, join(work, "never.pt")], (l) => lines.push(l)).then((status) => {
      expect(status).toBe(1);
      expect(existsSync(join(work, "never.pt"))).toBe(false);
    });
  });

  test("no .metadata: not a DCP folder", () => {
    const dir = copy("single-process");
    unlinkSync(join(dir, ".metadata"));
    expect(messages(dir)).toContain("a folder without a .metadata file, so not a torch.distributed.checkpoint folder");
  });

  test("a .metadata naming a global it may not (os.system) is refused by name, nothing executed", () => {
    const dir = copy("single-process");
    // PROTO 4, 'os' 'system' STACK_GLOBAL, 'true' TUPLE1 REDUCE STOP
    const evil = Buffer.concat([Buffer.from([0x80, 4, 0x8c, 2]), Buffer.from("os"), Buffer.from([0x8c, 6]), Buffer.from("system"), Buffer.from([0x93, 0x8c, 4]), Buffer.from("true"), Buffer.from([0x85, 0x52, 0x2e])]);
    writeFileSync(join(dir, ".metadata"), evil);
    expect(messages(dir)).toContain(".metadata, byte 15: the global os.system is not allowed (a torch.distributed.checkpoint .metadata names only its metadata classes");
  });

  test("a .metadata pointing out of the folder (../) is refused", () => {
    const dir = copy("single-process");
    const metadata = readFileSync(join(dir, ".metadata"));
    const from = Buffer.from("__0_0.distcp");
    const patched = Buffer.from(metadata.toString("latin1").split(from.toString("latin1")).join("../0_0.distc"), "latin1");
    writeFileSync(join(dir, ".metadata"), patched);
    expect(messages(dir)).toContain('is in "../0_0.distc", which is not a file name in the folder');
  });

  test("a chunk's item that holds another tensor than .metadata says", () => {
    const dir = copy("shard0-2ranks");
    const a = locate(dir, key, [0, 0]);
    const b = locate(dir, "optim.state.layer.bias.exp_avg", [0]);
    // The bias chunk's item (its own torch.save zip, of the same length here) put where the weight chunk's is.
    expect([a.file, a.to - a.from]).toEqual([b.file, b.to - b.from]);
    const bytes = readFileSync(join(dir, a.file));
    bytes.copy(bytes, a.from, b.from, b.to);
    writeFileSync(join(dir, a.file), bytes);
    expect(messages(dir)).toContain(`${a.file} bytes ${a.from}-${a.to} (${key}, chunk at offsets [0, 0]): holds a float32 tensor of shape [3]; .metadata says float32 [3, 3]`);
  });

  test("two items sharing bytes (one stored tensor standing for two) are named", () => {
    const item = (file: string, from: number, to: number, what: string) => ({ file, from, to, what });
    expect(sharedBytes([item("__0_0.distcp", 0, 100, "a"), item("__0_0.distcp", 100, 200, "b"), item("__1_0.distcp", 50, 150, "c")])).toEqual([]);
    expect(sharedBytes([item("__0_0.distcp", 100, 200, "b"), item("__0_0.distcp", 0, 150, "a")])).toEqual(["__0_0.distcp bytes 100-150 belong to two items, a and b: items of a checkpoint do not share bytes"]);
  });

  test("chunks that leave a gap, overlap or reach past the tensor are named (the tiling check)", () => {
    const full = (offsets: number[], sizes: number[]) => ({ offsets, sizes });
    expect(tilingProblem("t", [4, 3], [full([0, 0], [2, 3]), full([2, 0], [2, 3])])).toBeUndefined();
    expect(tilingProblem("t", [4, 3], [full([0, 0], [4, 1]), full([0, 1], [4, 2])])).toBeUndefined();
    expect(tilingProblem("t", [], [full([], [])])).toBeUndefined();
    expect(tilingProblem("t", [4, 3], [full([0, 0], [2, 3])])).toBe("t: its chunks cover 6 of its 12 elements (size [4, 3]): a gap, a missing rank's chunk");
    expect(tilingProblem("t", [4, 3], [full([0, 0], [3, 3]), full([2, 0], [2, 3])])).toBe("t, chunk at offsets [0, 0] (sizes [3, 3]) and the chunk at offsets [2, 0] (sizes [2, 3]) overlap");
    expect(tilingProblem("t", [4, 3], [full([0, 0], [2, 3]), full([2, 1], [2, 3])])).toBe("t, chunk at offsets [2, 1] of sizes [2, 3] reaches past the tensor's size [4, 3] in dim 1");
    expect(tilingProblem("t", [4, 3], [full([0], [4])])).toBe("t, chunk at offsets [0]: 1 sizes and 1 offsets for a tensor of 2 dims");
    // The check sorts row-major pieces: 200,000 chunks along one row (a pairwise check would take 2 * 10^10 steps).
    const many = Array.from({ length: 200_000 }, (_, k) => full([0, 199_999 - k], [1, 1]));
    const t0 = performance.now();
    expect(tilingProblem("t", [1, 200_000], many)).toBeUndefined();
    expect(tilingProblem("t", [1, 200_000], [...many, full([0, 7], [1, 1])])).toContain("overlap");
    expect(performance.now() - t0).toBeLessThan(5000);
  });
});

describe("flattened optimizer state dicts (flatten_optimizer_state_dict=True, as torchtitan saves them)", () => {
  test("are nested again: params with equal options make one group, in the order they appear; ids and names as for FQN keys", async () => {
    const { PickleWriter } = await import("../pt/pickle.ts");
    const { PyTuple } = await import("../pt/unpickle.ts");
    const { writeZip } = await import("../pt/zip.ts");
    const { tensorBytes } = await import("../json.ts");
    const { openPt } = await import("../pt/torch-file.ts");
    const t = (values: number[], shape = [values.length]) => Tensor.from(values, "float32", shape);
    const flat = new Map<string, unknown>();
    const params = [["enc.layers.0.w", 0.01], ["enc.layers.0.b", 0.01], ["head.w", 0.002]] as const;
    for (const [name] of params) for (const [k, v] of [["step", t([3], [])], ["mu_product", t([0.5], [])], ["exp_avg", t([1, 2])], ["exp_avg_sq", t([3, 4])]] as const) flat.set(`state.${name}.${k}`, v);
    for (const [name, lr] of params) for (const [k, v] of [["lr", lr], ["betas", new PyTuple([0.9, 0.999])], ["eps", 1e-8], ["weight_decay", 0.0], ["momentum_decay", 0.004]] as const) flat.set(`param_groups.${name}.${k}`, v);
    const { pickle, storages } = PickleWriter.dump(new Map([["optimizer", flat]]));
    const file = writeZip([["archive/data.pkl", pickle], ["archive/byteorder", Buffer.from("little")], ...storages.map((s, i) => [`archive/data/${i}`, tensorBytes(s as Tensor)] as const), ["archive/version", Buffer.from("3\n")]]);
    const losses: { path: string; what: string }[] = [];
    const opened = openPt(file, undefined, losses);
    expect(opened.at).toBe("optimizer");
    expect(opened.skeleton.param_groups.map((g) => [g.params, g.param_names, g.lr])).toEqual([
      [[0, 1], ["enc.layers.0.w", "enc.layers.0.b"], 0.01],
      [[2], ["head.w"], 0.002],
    ]);
    expect(Object.keys(opened.skeleton.state)).toEqual(["0", "1", "2"]);
    expect(losses.map((l) => l.what).join("\n")).toContain("params with equal options made 2 groups");
    const path = join(work, "flat.pt");
    writeFileSync(path, file);
    expect(checkFile(path).problems).toEqual([]);
  });
});

describe("validate and convert options", () => {
  test("an unknown option or a bad --chunk-size is a usage error (exit 2) naming it, and nothing is read or written", async () => {
    for (const [args, says] of [
      [["validate", "--bogus", join(fixtures, "single-process")], 'unknown option "--bogus"'],
      [["validate", "--chunk-size", "3", join(fixtures, "single-process")], "--chunk-size 3: between 16 bytes and 1G"],
      [["validate", "--chunk-size", "lots", join(fixtures, "single-process")], '--chunk-size needs a size in bytes (e.g. 4M), not "lots"'],
      [["convert", "--deep", join(fixtures, "single-process"), join(work, "x.pt")], 'unknown option "--deep"'],
    ] as const) {
      const lines: string[] = [];
      expect(await main([...args], (l) => lines.push(l))).toBe(2);
      expect(lines[0]).toContain(says);
    }
    expect(existsSync(join(work, "x.pt"))).toBe(false);
  });

  test("--chunk-size takes K, M and G suffixes; the output says what was checked", async () => {
    const lines: string[] = [];
    expect(await main(["validate", "--deep", "--chunk-size", "1K", join(fixtures, "shard1-4ranks")], (l) => lines.push(l))).toBe(0);
    expect(lines[0]).toBe(`${join(fixtures, "shard1-4ranks")}: valid NAdam state_dict (dcp at 'optim'; 4 params in 1 group, 4 with state, 472 B of tensors)`);
    expect(lines[1]).toBe("  values: 110 in 8 tensors (440 B) read: every exp_avg finite, every exp_avg_sq >= 0 and not NaN");
  });
});

describe("damaged at random", () => {
  test("500 DCP folders with bytes of .metadata or a shard flipped, cut or inserted: valid or refused, never a crash", () => {
    let seed = 20261126;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed % n;
    };
    const source = join(fixtures, "shard0-2ranks");
    const names = readdirSync(source);
    const originals = new Map(names.map((n) => [n, readFileSync(join(source, n))]));
    const dir = mkdtempSync(join(work, "fuzz-"));
    const outcomes = { valid: 0, refused: 0 };
    const t0 = performance.now();
    for (let run = 0; run < 500; run++) {
      for (const [n, bytes] of originals) writeFileSync(join(dir, n), bytes);
      const name = names[random(names.length)]!;
      let bytes = Buffer.from(originals.get(name)!);
      for (let k = 1 + random(4); k > 0; k--) {
        const at = random(bytes.length);
        const what = random(3);
        if (what === 0) bytes[at] = random(256);
        else if (what === 1) bytes = bytes.subarray(0, at);
        else bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from([random(256), random(256)]), bytes.subarray(at)]);
      }
      writeFileSync(join(dir, name), bytes);
      const checked = checkFile(dir, { deep: true, chunkBytes: 64 });
      if (checked.problems.length === 0) outcomes.valid++;
      else outcomes.refused++;
    }
    console.log(`DCP fuzz: ${outcomes.refused} refused, ${outcomes.valid} valid in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    // Most damage is found (a byte in a zip entry's padding, a header's time, or a string that stays UTF-8 may change nothing read).
    expect(outcomes.refused).toBeGreaterThan(400);
    expect(performance.now() - t0).toBeLessThan(60_000);
  });
});
