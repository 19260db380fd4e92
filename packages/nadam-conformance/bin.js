#!/usr/bin/env node
// The `nadam-conformance` command: nadam-reference's commands, on the corpus shipped here.
import { main } from "nadam-reference/cli";
import { CORPUS_DIR } from "./index.js";

process.exitCode = await main(process.argv.slice(2), undefined, { corpus: CORPUS_DIR, program: "nadam-conformance" });
