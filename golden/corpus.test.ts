/**
 * The golden corpus is what its manifest says, every file is well formed, and
 * the manifest is not stale (a changed generator means the corpus must be
 * regenerated with `npm run golden`).
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, test } from "vitest";
import { GOLDEN_DATA_DIR, GOLDEN_DIR, GoldenFormatError, loadManifest, parseGoldenCase } from "./load.ts";

const manifest = loadManifest();
const repoRoot = join(GOLDEN_DIR, "..");

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

describe("golden manifest", () => {
  test("lists exactly the files in golden/data, with their sha256", () => {
    const onDisk = walk(GOLDEN_DATA_DIR)
      .map((p) => relative(GOLDEN_DATA_DIR, p))
      .filter((p) => p !== "manifest.json")
      .sort();
    expect(Object.keys(manifest.files).sort()).toEqual(onDisk);
    const stale = onDisk.filter((f) => sha256(join(GOLDEN_DATA_DIR, f)) !== manifest.files[f]);
    expect(stale).toEqual([]);
  });

  test("was made by the generators in scripts/golden as they are now", () => {
    expect(sha256(join(repoRoot, manifest.generator.path))).toBe(manifest.generator.sha256);
    const pow = (manifest as unknown as { pow_vectors: { path: string; sha256: string; generator: { path: string; sha256: string } } }).pow_vectors;
    expect(sha256(join(repoRoot, pow.generator.path))).toBe(pow.generator.sha256);
    expect(sha256(join(repoRoot, pow.path))).toBe(pow.sha256);
  });

  test("has at least 200 cases under each CPU profile of torch 2.6", () => {
    const modern = manifest.runs.filter((r) => r.torch.version.startsWith("2.6") && r.torch.cpu_capability !== "AVX512");
    expect(modern.map((r) => r.torch.profile).sort()).toEqual(["default", "vectorized"]);
    for (const run of modern) expect(run.written).toBeGreaterThanOrEqual(200);
  });

  test("keeps the committed corpus under 25 MB", () => {
    const bytes = walk(GOLDEN_DATA_DIR).reduce((sum, p) => sum + statSync(p).size, 0) + statSync(join(GOLDEN_DIR, "pow-vectors.json")).size;
    expect(bytes).toBeLessThan(25 * 1024 * 1024);
  });
});

describe("the AVX512 run", () => {
  // golden.mjs recorded the whole catalog under AVX512 and found it identical to AVX2; it keeps the
  // cases whose bits would tell a 64-element vector block from a 32-element one.
  const run = manifest.runs.find((r) => r.torch.cpu_capability === "AVX512");
  const avx2 = manifest.runs.find((r) => r.torch.version === run?.torch.version && r.torch.cpu_capability === "AVX2");

  test("exists, with the vector-block cases of both 16-bit dtypes and paths", () => {
    expect(run?.torch.profile).toBe("vectorized");
    const files = Object.keys(manifest.files).filter((f) => f.startsWith(`${run!.dir}/`));
    expect(files.map((f) => f.slice(run!.dir.length + 1)).sort()).toEqual(
      ["bfloat16/foreach", "bfloat16/forloop", "float16/foreach", "float16/forloop"].map((s) => `structure/vector-blocks/${s}.json`),
    );
  });

  test("repeats the AVX2 recordings bit for bit", () => {
    for (const file of Object.keys(manifest.files).filter((f) => f.startsWith(`${run!.dir}/`))) {
      const own = parseGoldenCase(readFileSync(join(GOLDEN_DATA_DIR, file), "utf8"), file);
      const twin = file.replace(`${run!.dir}/`, `${avx2!.dir}/`);
      const other = parseGoldenCase(readFileSync(join(GOLDEN_DATA_DIR, twin), "utf8"), twin);
      expect(own.torch.cpu_capability).toBe("AVX512");
      expect(own.steps).toEqual(other.steps);
    }
  });

  test("would fail a 64-element AVX512 block: the sizes with n mod 64 >= 32 are there, with a non-power-of-two decay", () => {
    const file = Object.keys(manifest.files).find((f) => f.startsWith(`${run!.dir}/`))!;
    const golden = parseGoldenCase(readFileSync(join(GOLDEN_DATA_DIR, file), "utf8"), file);
    const sizes = golden.params.map((p) => p.init.shape.reduce((a, b) => a * b, 1));
    expect(sizes.filter((n) => n % 64 >= 32).length).toBeGreaterThanOrEqual(3);
    const decay = golden.param_groups[0]!.options.weight_decay!;
    expect(Math.log2(decay) % 1).not.toBe(0);
  });
});

describe("golden files", () => {
  test("every file matches golden/schema.json and its own dtypes, shapes and ids", () => {
    let checked = 0;
    for (const file of Object.keys(manifest.files)) {
      const golden = parseGoldenCase(readFileSync(join(GOLDEN_DATA_DIR, file), "utf8"), file);
      const folder = golden.torch.cpu_capability === "AVX512" ? "avx512" : golden.torch.profile; // <version>/<profile>, or <version>/avx512
      expect(`${golden.torch.version}/${folder}/${golden.id}.json`).toBe(file);
      checked++;
    }
    expect(checked).toBe(Object.keys(manifest.files).length);
  });

  const sample = Object.keys(manifest.files)[0]!;
  const text = readFileSync(join(GOLDEN_DATA_DIR, sample), "utf8");
  const doc = JSON.parse(text) as Record<string, unknown> & { steps: { params: string[] }[] };

  test.each([
    ["not JSON", text.slice(0, 100), /not JSON/],
    ["a wrong format tag", JSON.stringify({ ...doc, format: "nadam-golden/0" }), /\/format must be equal to constant/],
    ["an unknown key", JSON.stringify({ ...doc, extra: 1 }), /must NOT have additional properties/],
    ["a non-hex tensor", JSON.stringify({ ...doc, steps: [{ ...doc.steps[0], params: ["xyz0"] }] }), /\/steps\/0\/params\/0 must match pattern/],
    ["a truncated tensor", JSON.stringify({ ...doc, steps: [{ ...doc.steps[0], params: doc.steps[0]!.params.map((h) => h.slice(4)) }] }), /\/steps\/0\/params\/0 has \d+ hex digits, expected \d+/],
  ])("a file with %s is rejected with a message naming the place", (_what, bad, message) => {
    expect(() => parseGoldenCase(bad, "bad.json")).toThrow(GoldenFormatError);
    expect(() => parseGoldenCase(bad, "bad.json")).toThrow(message);
  });
});
