/**
 * Bytes read where they lie: a file through positioned reads, or memory, or a
 * range of either (one item of a DCP shard file). Readers of checkpoints see
 * only this, so that no file, however large, is ever held whole.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from "node:fs";
import { CheckpointError } from "./errors.ts";

export interface ByteSource {
  /** Its length in bytes. */
  readonly size: number;
  /** What it is, in messages: a path, or a path and a byte range. */
  readonly name: string;
  /**
   * Exactly `length` bytes from `offset` (a view where the bytes are already in
   * memory; read into `scratch` when it is given and large enough, so that a
   * stream reuses one buffer); throws CheckpointError past the end.
   */
  read(offset: number, length: number, scratch?: Buffer): Uint8Array;
}

/** Bytes already in memory. */
export function memorySource(bytes: Uint8Array, name = "the file"): ByteSource {
  return {
    size: bytes.length,
    name,
    read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > bytes.length) throw new CheckpointError(`${name}: bytes ${offset}-${offset + length} lie outside its ${bytes.length} bytes`);
      return bytes.subarray(offset, offset + length);
    },
  };
}

/** What a path is when it is not a regular file (stat's answer): the size a device or FIFO gives says nothing. */
export function fileType(stat: Stats): string | undefined {
  if (stat.isFile()) return undefined;
  if (stat.isDirectory()) return "a directory";
  if (stat.isCharacterDevice()) return "a character device";
  if (stat.isBlockDevice()) return "a block device";
  if (stat.isFIFO()) return "a FIFO (named pipe)";
  if (stat.isSocket()) return "a socket";
  return "not a regular file";
}

/**
 * Open a regular file without blocking (a FIFO would wait for a writer),
 * checked by the opened file's own stat (a symlink to /dev/zero is a character
 * device; its size 0 bounds nothing): its descriptor and size. Throws
 * CheckpointError naming what it is when it is not one.
 */
export function openRegularFile(path: string, options: { readonly followLinks?: boolean } = {}): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | (options.followLinks === false ? constants.O_NOFOLLOW : 0));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ELOOP" && options.followLinks === false) throw new CheckpointError("a symbolic link, which is not followed here");
    throw error;
  }
  try {
    const stat = fstatSync(fd);
    const type = fileType(stat);
    if (type !== undefined) throw new CheckpointError(`${type}, not a regular file`);
    return { fd, size: stat.size };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/**
 * A regular file (openRegularFile) read through positioned reads. Its size is
 * taken at opening: a file that shrinks meanwhile is refused where a read comes up short.
 */
export class FileSource implements ByteSource {
  readonly size: number;
  private fd: number | undefined;

  constructor(
    readonly name: string,
    options: { readonly followLinks?: boolean } = {},
  ) {
    const { fd, size } = openRegularFile(name, options);
    this.fd = fd;
    this.size = size;
  }

  read(offset: number, length: number, scratch?: Buffer): Uint8Array {
    if (this.fd === undefined) throw new Error(`${this.name} is closed`);
    if (offset < 0 || length < 0 || offset + length > this.size) throw new CheckpointError(`${this.name}: bytes ${offset}-${offset + length} lie outside its ${this.size} bytes`);
    const out = scratch !== undefined && scratch.length >= length ? scratch.subarray(0, length) : Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, out, done, Math.min(length - done, 2 ** 30), offset + done);
      if (n === 0) throw new CheckpointError(`${this.name}: shrank below ${offset + length} bytes while being read`);
      done += n;
    }
    return out;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Bytes `offset` to `offset + length` of another source, read as a source of their own. */
export function sliceSource(source: ByteSource, offset: number, length: number, name: string): ByteSource {
  if (offset < 0 || length < 0 || offset + length > source.size) throw new CheckpointError(`${name} lies outside ${source.name}'s ${source.size} bytes`);
  return {
    size: length,
    name,
    read(at, n, scratch) {
      if (at < 0 || n < 0 || at + n > length) throw new CheckpointError(`${name}: bytes ${at}-${at + n} lie outside its ${length} bytes`);
      return source.read(offset + at, n, scratch);
    },
  };
}
