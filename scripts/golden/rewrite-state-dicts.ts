/**
 * The middle of the round trip: read each torch.save'd fixture in IN_DIR with
 * this project's reader, write it again with its writer into OUT_DIR.
 * Run by scripts/golden.mjs:  tsx rewrite-state-dicts.ts IN_DIR OUT_DIR
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readPt, writePt } from "../../checkpoint/pt/torch-file.ts";

const [input, output] = process.argv.slice(2);
if (!input || !output) throw new Error("usage: rewrite-state-dicts.ts IN_DIR OUT_DIR");
mkdirSync(output, { recursive: true });
for (const name of readdirSync(input).filter((f) => f.endsWith(".pt") && !f.startsWith("other-"))) {
  writeFileSync(join(output, name), writePt(readPt(readFileSync(join(input, name)))));
}
