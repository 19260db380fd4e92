// npm run build: the package as users install it, in dist/ — compiled ESM (without
// comments) and declarations (with them) for the public entry points (tsconfig.build.json), the standalone
// schema validators, the JSON Schemas, and the command. Then every relative
// import in dist/ is checked to resolve inside dist/.
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const dist = join(root, "dist");

/** Files copied as they are: the generated validators (beside the modules that import them) and the schemas. */
const COPIES = [
  ["spec/state-dict/schema.validate.js", "spec/state-dict/schema.validate.js"],
  ["spec/state-dict/schema.validate.d.ts", "spec/state-dict/schema.validate.d.ts"],
  ["golden/schema.validate.js", "golden/schema.validate.js"],
  ["golden/schema.validate.d.ts", "golden/schema.validate.d.ts"],
  ["spec/state-dict/schema.json", "schemas/state-dict.schema.json"],
  ["golden/schema.json", "schemas/golden.schema.json"],
  ["conformance/protocol.schema.json", "schemas/protocol.schema.json"],
];

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
// Declarations keep their doc comments; the JavaScript drops its comments (about 40 % of its bytes), since
// no source ships and the install should stay small.
execFileSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json"), "--emitDeclarationOnly"], { stdio: "inherit" });
execFileSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json"), "--declaration", "false", "--removeComments"], { stdio: "inherit" });

for (const [from, to] of COPIES) {
  mkdirSync(dirname(join(dist, to)), { recursive: true });
  copyFileSync(join(root, from), join(dist, to));
}

// tsc rewrites `.ts` import paths in the JavaScript it emits, not in declarations:
// consumers' tsc must see `.js` there too.
const relativeImport = /((?:from|import)\s*\(?\s*["'])(\.\.?\/[^"']+)\.ts(["'])/g;
for (const file of walk(dist).filter((f) => f.endsWith(".d.ts"))) {
  const text = readFileSync(file, "utf8");
  const rewritten = text.replace(relativeImport, "$1$2.js$3");
  if (rewritten !== text) writeFileSync(file, rewritten);
}

chmodSync(join(dist, "cli/bin.js"), 0o755);

// Every relative import resolves to a file in dist/ (a missing copy fails the build, not the user).
const problems = [];
for (const file of walk(dist).filter((f) => /\.(js|d\.ts)$/.test(f))) {
  for (const match of readFileSync(file, "utf8").matchAll(/(?:from|import)\s*\(?\s*["'](\.\.?\/[^"']+)["']/g)) {
    const target = resolve(dirname(file), match[1]);
    const candidates = file.endsWith(".d.ts") ? [target, target.replace(/\.js$/, ".d.ts")] : [target];
    if (!candidates.some(existsSync)) problems.push(`${relative(root, file)}: ${match[1]}`);
  }
}
if (problems.length > 0) {
  console.error(`dist/ has imports that resolve to nothing:\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
const files = walk(dist);
const bytes = files.reduce((sum, f) => sum + statSync(f).size, 0);
console.log(`dist/: ${files.length} files, ${(bytes / 1024).toFixed(0)} KiB`);
