/**
 * Offline judging: a port writes its answers to files beforehand, the suite
 * judges the files. Format (one file per case and profile,
 * <dir>/<case id with "/" as "__">.<profile>.json):
 *   {"format": "nadam-trajectory/1", "case": id, "profile": p, "steps": [<step reply>...]}
 * where each step reply is the protocol's {"params": [...], "state": [...]}
 * after that step, and <dir>/port.json holds {"name", "capabilities"}.
 * `nadam-reference record --port X --out DIR` writes such a folder from any port.
 */
import { existsSync, mkdirSync } from "node:fs";
import { readRegularFile, replaceFile } from "../checkpoint/files.ts";
import { join } from "node:path";
import { UnsupportedError, type OpenRequest, type Port, type PortCapabilities, type PortSession, type StepReply } from "./port.ts";

export const TRAJECTORY_FORMAT = "nadam-trajectory/1";

function fileOf(dir: string, id: string, profile: string): string {
  return join(dir, `${id.replace(/\//g, "__")}.${profile}.json`);
}

/** A port that records every answer of another port into `dir`. */
export function recordingPort(inner: Port, dir: string): Port {
  mkdirSync(dir, { recursive: true });
  const recorded = new Map<string, StepReply[]>();
  return {
    name: inner.name,
    async capabilities() {
      const caps = await inner.capabilities();
      replaceFile(join(dir, "port.json"), JSON.stringify({ name: inner.name, capabilities: caps }, null, 1) + "\n");
      return caps;
    },
    async open(request: OpenRequest): Promise<PortSession> {
      const session = await inner.open(request);
      const key = request.case ? fileOf(dir, request.case.id, request.case.profile) : null;
      if (key && !recorded.has(key)) recorded.set(key, []);
      return {
        ...session,
        step: async (grads) => {
          const reply = await session.step(grads);
          if (key) recorded.get(key)!.push(reply);
          return reply;
        },
        set: (g, k, v) => session.set(g, k, v),
        addParamGroup: (o, p) => session.addParamGroup(o, p),
        stateDict: () => session.stateDict(),
        loadStateDict: (sd) => session.loadStateDict(sd),
        // Written when a session ends (once more after a reload's second session), not at every step.
        close: async () => {
          await session.close();
          // Replaced whole: a link planted in the folder is replaced, not written through.
          if (key) replaceFile(key, JSON.stringify({ format: TRAJECTORY_FORMAT, case: request.case!.id, profile: request.case!.profile, steps: recorded.get(key) }) + "\n");
        },
      };
    },
    dispose: () => inner.dispose?.() ?? Promise.resolve(),
  };
}

/** Largest port.json, and largest trajectory file, read. */
const MAX_META_BYTES = 2 ** 20;
const MAX_TRAJECTORY_BYTES = 2 ** 28;

/**
 * A file of the folder, parsed: a regular file only (a symlink to a secret, a
 * device or a FIFO is refused), bounded, and never quoted when it is not JSON
 * (JSON.parse's message shows the text's first bytes).
 */
function readJson(file: string, max: number): unknown {
  let text: string;
  try {
    text = readRegularFile(file, max, { followLinks: false }).toString("utf8");
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${file}: not valid JSON`);
  }
}

/** A port that answers from files written earlier (it computes nothing). */
export function offlinePort(dir: string): Port {
  const meta = readJson(join(dir, "port.json"), MAX_META_BYTES) as { name: unknown; capabilities: PortCapabilities } | null;
  if (typeof meta !== "object" || meta === null || typeof meta.name !== "string") throw new Error(`${join(dir, "port.json")}: expected {"name": "...", "capabilities": {...}}`);
  const cursors = new Map<string, number>();
  return {
    name: `${meta.name} (offline, ${dir})`,
    async capabilities() {
      return meta.capabilities;
    },
    async open(request: OpenRequest): Promise<PortSession> {
      if (!request.case) throw new Error("an offline port needs the case id");
      const file = fileOf(dir, request.case.id, request.case.profile);
      // Judge what was recorded; a case that was not is a skip that says so, not an error.
      if (!existsSync(file)) throw new UnsupportedError(`not recorded in ${dir}`);
      const doc = readJson(file, MAX_TRAJECTORY_BYTES) as { format: unknown; steps: StepReply[] };
      if (doc.format !== TRAJECTORY_FORMAT) throw new Error(`${file}: format ${JSON.stringify(doc.format)?.slice(0, 40)}, expected ${TRAJECTORY_FORMAT}`);
      // A reload opens a second session on the same case: it continues where the first stopped.
      const none = async () => undefined;
      return {
        step: async () => {
          const at = cursors.get(file) ?? 0;
          const reply = doc.steps[at];
          if (!reply) throw new Error(`${file} holds ${doc.steps.length} steps; step ${at + 1} was asked for`);
          cursors.set(file, at + 1);
          return reply;
        },
        set: none,
        addParamGroup: none,
        stateDict: async () => ({ state: {}, param_groups: [] }),
        loadStateDict: none,
        close: async () => {
          if ((cursors.get(file) ?? 0) >= doc.steps.length) cursors.delete(file);
        },
      };
    },
  };
}

