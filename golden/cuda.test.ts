/**
 * golden/cuda: the catalog of scripts/golden/generate.py run by torch 2.11 on an
 * H100 (scripts/torch-elsewhere/catalog.py, mode cuda), outside the suite's CPU
 * corpus. The manifest lists exactly its files, every file is well formed and
 * says which GPU recorded it, and the CPU profiles cannot stand in for `cuda`
 * (golden/replay.test.ts replays every case under `cuda` bit for bit).
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, test } from "vitest";
import { GOLDEN_CUDA_DIR, GOLDEN_DIR, loadGoldenCorpus, loadManifest, parseGoldenCase } from "./load.ts";
import { replayCase } from "./replay.ts";
import { configOf } from "./simulate.ts";
import type { GoldenCase } from "./case.ts";

const manifest = loadManifest(GOLDEN_CUDA_DIR);
const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
const walk = (dir: string): string[] => readdirSync(dir).flatMap((name) => (statSync(join(dir, name)).isDirectory() ? walk(join(dir, name)) : [join(dir, name)]));

describe("golden/cuda", () => {
  test("its manifest lists exactly the files there, with their sha256, and the catalog it ran is generate.py as it is now", () => {
    const onDisk = walk(GOLDEN_CUDA_DIR).map((p) => relative(GOLDEN_CUDA_DIR, p)).filter((p) => p !== "manifest.json").sort();
    expect(Object.keys(manifest.files).sort()).toEqual(onDisk);
    expect(onDisk.filter((f) => sha256(join(GOLDEN_CUDA_DIR, f)) !== manifest.files[f])).toEqual([]);
    expect(sha256(join(GOLDEN_DIR, "..", manifest.generator.path))).toBe(manifest.generator.sha256);
  });

  test("holds the whole catalog of one run: 312 cases, none skipped, each at <version>/<id>.json, recorded under `cuda` on a named GPU", () => {
    expect(manifest.runs).toHaveLength(1);
    const [run] = manifest.runs;
    expect(run!.skipped).toEqual([]);
    expect(run!.written).toBe(312);
    const cases = loadGoldenCorpus(GOLDEN_CUDA_DIR);
    expect(cases).toHaveLength(312);
    for (const { file, golden } of cases) {
      expect(file).toBe(`${golden.torch.version}/${golden.id}.json`);
      expect(golden.torch).toEqual(run!.torch);
    }
    expect(run!.torch).toMatchObject({ version: "2.11.0+cu130", profile: "cuda", device: "NVIDIA H100 80GB HBM3" });
    const dtypes = new Set(cases.map((c) => `${c.golden.dtype} ${c.golden.foreach ? "foreach" : "forloop"}`));
    expect(dtypes.size).toBe(12); // float64, float32, float16, bfloat16, complex64, complex128 × both paths
  });

  test("a `cuda` provenance needs its device, and a CPU one may not name one", () => {
    const text = readFileSync(join(GOLDEN_CUDA_DIR, Object.keys(manifest.files)[0]!), "utf8");
    const doc = JSON.parse(text) as GoldenCase;
    const { device: _device, ...withoutDevice } = doc.torch;
    expect(() => parseGoldenCase(JSON.stringify({ ...doc, torch: withoutDevice }), "bad.json")).toThrow(/\/torch must have required property 'device'/);
    expect(() => parseGoldenCase(JSON.stringify({ ...doc, torch: { ...doc.torch, profile: "vectorized" } }), "bad.json")).toThrow(/\/torch/);
  });

  test("the CPU profiles do not reproduce it: a quarter of its cases or more differ under each of them", () => {
    const cases = loadGoldenCorpus(GOLDEN_CUDA_DIR).map((c) => c.golden);
    for (const profile of ["vectorized", "default"] as const) {
      const differing = cases.filter((golden) => replayCase(golden, 0, { ...configOf(golden), profile }).mismatches > 0);
      console.log(`golden/cuda under the CPU's ${profile} profile: ${differing.length} of ${cases.length} cases differ`);
      expect(differing.length, profile).toBeGreaterThan(cases.length / 4);
    }
    expect(replayCase(cases.find((c) => c.id === "options/defaults/float32/foreach")!).mismatches).toBe(0);
  });
});
