/**
 * Where the golden corpus is. In this repository it is golden/data; users of
 * the installed package get it from the `nadam-conformance` package (the
 * corpus and the suite's command), which the optimizer's own install does not
 * carry.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** The npm package that ships the corpus (packages/nadam-conformance in this repository). */
export const CORPUS_PACKAGE = "nadam-conformance";

export class CorpusNotFoundError extends Error {
  override readonly name = "CorpusNotFoundError";
}

function holdsCorpus(dir: string): boolean {
  return existsSync(join(dir, "manifest.json"));
}

/** The corpus folder of the `nadam-conformance` package as `from` would import it, if installed there. */
function packagedCorpus(from: string): string | undefined {
  try {
    return dirname(createRequire(from).resolve(`${CORPUS_PACKAGE}/corpus/manifest.json`));
  } catch {
    return undefined;
  }
}

/**
 * The corpus folder: `explicit` when given (a folder holding manifest.json);
 * else the `nadam-conformance` package installed in the current project or
 * beside this one; else this source checkout's golden/data.
 */
export function locateCorpus(explicit?: string): string {
  if (explicit !== undefined) {
    const dir = resolve(explicit);
    if (!holdsCorpus(dir)) throw new CorpusNotFoundError(`${dir} is not a golden corpus: it has no manifest.json`);
    return dir;
  }
  const candidates = [packagedCorpus(pathToFileURL(join(process.cwd(), "package.json")).href), packagedCorpus(import.meta.url), join(dirname(fileURLToPath(import.meta.url)), "data")];
  const found = candidates.find((dir): dir is string => dir !== undefined && holdsCorpus(dir));
  if (found === undefined) {
    throw new CorpusNotFoundError(
      `the golden corpus is not installed: run the suite with \`npx ${CORPUS_PACKAGE} check …\`, install it (\`npm install ${CORPUS_PACKAGE}\`), or name a corpus folder with --corpus`,
    );
  }
  return found;
}
