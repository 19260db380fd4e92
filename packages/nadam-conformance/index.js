// The golden corpus folder this package ships (manifest.json and the cases).
import { fileURLToPath } from "node:url";

export const CORPUS_DIR = fileURLToPath(new URL("./corpus/", import.meta.url));
