// The golden corpus as the nadam-conformance package ships it (its prepack):
// the torch 2.x runs of golden/data — the cases the suite judges ports on — with
// a manifest listing exactly those files and their sha256. torch 1.13's runs stay
// in this repository (history: the suite never reads them).
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const source = join(root, "golden/data");
const target = join(root, "packages/nadam-conformance/corpus");

const manifest = JSON.parse(readFileSync(join(source, "manifest.json"), "utf8"));
const runs = manifest.runs.filter((run) => run.torch.version.startsWith("2."));
const dirs = runs.map((run) => `${run.dir}/`);
const files = Object.fromEntries(Object.entries(manifest.files).filter(([file]) => dirs.some((dir) => file.startsWith(dir))));
if (Object.keys(files).length === 0) throw new Error("golden/data has no torch 2.x run");

rmSync(target, { recursive: true, force: true });
for (const file of Object.keys(files)) {
  mkdirSync(dirname(join(target, file)), { recursive: true });
  copyFileSync(join(source, file), join(target, file));
}
writeFileSync(join(target, "manifest.json"), `${JSON.stringify({ format: manifest.format, generator: manifest.generator, runs, files }, null, 2)}\n`);
console.log(`packages/nadam-conformance/corpus: ${Object.keys(files).length} cases of ${runs.map((r) => r.dir).join(", ")}`);
