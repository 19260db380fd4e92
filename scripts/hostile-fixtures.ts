/**
 * Writes checkpoint/fixtures/hostile/: each hostile or broken state dict file
 * of checkpoint/hostile.ts, and expected.json (file → why, and the message
 * `nadam-reference validate` must answer with). Run: npm run fixtures:hostile
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { hostileFixtures } from "../checkpoint/hostile.ts";

const dir = new URL("../checkpoint/fixtures/hostile/", import.meta.url);
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const expected: Record<string, { why: string; expect: string }> = {};
for (const f of hostileFixtures()) {
  writeFileSync(new URL(f.file, dir), f.bytes);
  expected[f.file] = { why: f.why, expect: f.expect };
}
writeFileSync(new URL("expected.json", dir), JSON.stringify(expected, null, 1) + "\n");
console.log(`${Object.keys(expected).length} hostile fixtures in ${dir.pathname}`);
