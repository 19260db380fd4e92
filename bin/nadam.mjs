#!/usr/bin/env node
// The `nadam` command: the TypeScript CLI in cli/main.ts, run through tsx's loader.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
