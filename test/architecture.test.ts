/**
 * The folder layout is the architecture: which folder may import which. The
 * spec depends on nothing; the host Tensor only on the spec; checkpoints on no
 * backend; a backend only on the seam (impl/backend.ts), the spec, the host
 * tensor and its own folder; the optimizer front picks its default backend
 * from the registry alone; only conformance/builtin.ts reaches into impl/.
 * (Tests, scripts and examples may import anything.)
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { expect, test } from "vitest";

const root = new URL("../", import.meta.url).pathname;

function sources(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) return name === "data" || name === "fixtures" ? [] : sources(path);
    return /\.(ts|js)$/.test(name) && !name.endsWith(".test.ts") && !name.endsWith(".d.ts") ? [path] : [];
  });
}

/** The relative imports of a source file, as repository paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), "utf8");
  return [...text.matchAll(/(?:from|import)\s*\(?\s*["'](\.\.?\/[^"']+)["']/g)].map((m) => relative(root, join(dirname(join(root, file)), m[1]!)));
}

/** Which paths a file may import, by where it lives (first match wins). */
const RULES: readonly { readonly files: RegExp; readonly may: readonly RegExp[] }[] = [
  { files: /^spec\//, may: [/^spec\//] },
  { files: /^tensor\//, may: [/^spec\//, /^tensor\//] },
  { files: /^checkpoint\//, may: [/^spec\//, /^tensor\//, /^checkpoint\//] },
  { files: /^golden\//, may: [/^spec\//, /^golden\//] },
  // a backend: the seam, the spec, the host tensor, its own folder (checked per folder below)
  { files: /^impl\/backends\/[^/]+\//, may: [/^spec\//, /^tensor\//, /^impl\/backend\.ts$/] },
  { files: /^impl\/backends\/index\.ts$/, may: [/^tensor\//, /^impl\/backend\.ts$/, /^impl\/backends\/[^/]+\/index\.ts$/] },
  { files: /^impl\//, may: [/^spec\//, /^tensor\//, /^impl\/(core\/|backend\.ts$|index\.ts$|backends\/index\.ts$|backends\/[^/]+\/index\.ts$)/] },
  { files: /^conformance\/builtin\.ts$/, may: [/^spec\//, /^tensor\//, /^checkpoint\//, /^golden\//, /^impl\//, /^conformance\//] },
  { files: /^conformance\//, may: [/^spec\//, /^tensor\//, /^checkpoint\//, /^golden\//, /^conformance\//] },
  // (the CLI reaches the optimizer and its backends through the package's public entry only)
  { files: /^cli\//, may: [/^spec\//, /^checkpoint\//, /^conformance\//, /^golden\//, /^cli\//, /^impl\/index\.ts$/] },
];

test("every import follows the layering", () => {
  const files = ["spec", "tensor", "checkpoint", "golden", "impl", "conformance", "cli"].flatMap(sources);
  expect(files.length).toBeGreaterThan(50);
  const violations: string[] = [];
  for (const file of files) {
    const rule = RULES.find((r) => r.files.test(file));
    if (rule === undefined) {
      violations.push(`${file}: no rule`);
      continue;
    }
    const ownBackend = file.match(/^impl\/backends\/[^/]+\//)?.[0];
    for (const target of importsOf(file)) {
      const allowed = rule.may.some((m) => m.test(target)) || (ownBackend !== undefined && target.startsWith(ownBackend));
      if (!allowed) violations.push(`${file} imports ${target}`);
    }
  }
  expect(violations).toEqual([]);
});

test("the rules can fail: a backend importing the optimizer front is a violation", () => {
  const rule = RULES.find((r) => r.files.test("impl/backends/example/backend.ts"))!;
  expect(rule.may.some((m) => m.test("impl/core/nadam.ts"))).toBe(false);
  expect(rule.may.some((m) => m.test("impl/backend.ts"))).toBe(true);
  const checkpointRule = RULES.find((r) => r.files.test("checkpoint/json.ts"))!;
  expect(checkpointRule.may.some((m) => m.test("impl/backends/typed-array/backend.ts"))).toBe(false);
});
