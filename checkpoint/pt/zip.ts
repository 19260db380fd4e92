/**
 * The zip container of torch.save (PyTorch's "zip file format", torch >= 1.6):
 * a reader that trusts nothing (every offset and size is bounds-checked, CRCs
 * verified, sizes capped) and a writer that stores entries uncompressed with
 * their data 64-byte aligned, as torch.save does.
 */
import { crc32, inflateRawSync } from "node:zlib";
import { CheckpointError } from "./errors.ts";

export interface ZipLimits {
  /** Most entries a file may have. */
  readonly maxEntries: number;
  /** Largest uncompressed entry, in bytes. */
  readonly maxEntryBytes: number;
  /** Largest sum of uncompressed entries, in bytes. */
  readonly maxTotalBytes: number;
}

export const DEFAULT_ZIP_LIMITS: ZipLimits = { maxEntries: 100_000, maxEntryBytes: 2 ** 31, maxTotalBytes: 2 ** 32 };

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const ZIP64_EOCD = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;

function need(ok: boolean, message: string): asserts ok {
  if (!ok) throw new CheckpointError(`not a valid .pt zip archive: ${message}`);
}

function u16(b: Uint8Array, at: number): number {
  need(at >= 0 && at + 2 <= b.length, `a 2-byte field at offset ${at} lies outside the ${b.length}-byte file`);
  return b[at]! | (b[at + 1]! << 8);
}

function u32(b: Uint8Array, at: number): number {
  need(at >= 0 && at + 4 <= b.length, `a 4-byte field at offset ${at} lies outside the ${b.length}-byte file`);
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

function u64(b: Uint8Array, at: number): number {
  const value = u32(b, at) + u32(b, at + 4) * 2 ** 32;
  need(Number.isSafeInteger(value), `a 64-bit size at offset ${at} is too large`);
  return value;
}

/** One entry of an archive: its declared size, and its bytes, inflated and checked only when read. */
export interface ZipEntry {
  readonly uncompressed: number;
  read(): Uint8Array;
}

/**
 * The entries of a zip, name → entry, in central directory order: every header
 * checked now, no entry inflated until it is read (an entry the reader never
 * uses costs nothing). Entries whose data overlap are refused: no zip writer
 * makes them, and they let a small file declare the same deflated bytes many times.
 */
export function openZip(file: Uint8Array, limits: ZipLimits = DEFAULT_ZIP_LIMITS): Map<string, ZipEntry> {
  need(file.length >= 22, `${file.length} bytes is shorter than an empty zip`);
  // The end-of-central-directory record is in the last 22 + 65535 bytes.
  let eocd = -1;
  for (let at = file.length - 22; at >= Math.max(0, file.length - 22 - 65535); at--) {
    if (u32(file, at) === EOCD) {
      eocd = at;
      break;
    }
  }
  need(eocd >= 0, "no end-of-central-directory record (truncated, or not a zip)");
  let count = u16(file, eocd + 10);
  let size = u32(file, eocd + 12);
  let offset = u32(file, eocd + 16);
  if (count === 0xffff || size === 0xffffffff || offset === 0xffffffff) {
    const locator = eocd - 20;
    need(locator >= 0 && u32(file, locator) === ZIP64_LOCATOR, "zip64 sizes without a zip64 locator");
    const record = u64(file, locator + 8);
    need(u32(file, record) === ZIP64_EOCD, "the zip64 locator points at no zip64 record");
    count = u64(file, record + 32);
    size = u64(file, record + 40);
    offset = u64(file, record + 48);
  }
  need(count <= limits.maxEntries, `${count} entries; at most ${limits.maxEntries} are accepted`);
  need(offset + size <= file.length, `the central directory (offset ${offset}, ${size} bytes) runs past the end of the ${file.length}-byte file`);

  const entries = new Map<string, ZipEntry>();
  const spans: { name: string; from: number; to: number }[] = [];
  let total = 0;
  let at = offset;
  for (let i = 0; i < count; i++) {
    need(u32(file, at) === CENTRAL, `central directory entry ${i} has a bad signature`);
    const method = u16(file, at + 10);
    const crc = u32(file, at + 16);
    let compressed = u32(file, at + 20);
    let uncompressed = u32(file, at + 24);
    const nameLength = u16(file, at + 28);
    const extraLength = u16(file, at + 30);
    const commentLength = u16(file, at + 32);
    let local = u32(file, at + 42);
    need(at + 46 + nameLength <= file.length, `central directory entry ${i}'s name runs past the end of the file`);
    const name = Buffer.from(file.subarray(at + 46, at + 46 + nameLength)).toString("utf8");
    // zip64 extended information: the 0xffffffff fields, in order.
    let extra = at + 46 + nameLength;
    const extraEnd = extra + extraLength;
    while (extra + 4 <= extraEnd) {
      const id = u16(file, extra);
      const length = u16(file, extra + 2);
      if (id === 0x0001) {
        let field = extra + 4;
        if (uncompressed === 0xffffffff) (uncompressed = u64(file, field)), (field += 8);
        if (compressed === 0xffffffff) (compressed = u64(file, field)), (field += 8);
        if (local === 0xffffffff) local = u64(file, field);
      }
      extra += 4 + length;
    }
    need(!entries.has(name), `the entry ${JSON.stringify(name)} appears twice`);
    need(method === 0 || method === 8, `entry ${JSON.stringify(name)} uses compression method ${method}; only stored (0) and deflate (8) are read`);
    need(uncompressed <= limits.maxEntryBytes, `entry ${JSON.stringify(name)} declares ${uncompressed} bytes; at most ${limits.maxEntryBytes} are accepted`);
    total += uncompressed;
    need(total <= limits.maxTotalBytes, `the entries declare more than ${limits.maxTotalBytes} bytes in all`);
    need(u32(file, local) === LOCAL, `entry ${JSON.stringify(name)}'s local header is missing at offset ${local}`);
    const dataStart = local + 30 + u16(file, local + 26) + u16(file, local + 28);
    need(dataStart + compressed <= file.length, `entry ${JSON.stringify(name)}'s ${compressed} bytes run past the end of the file (truncated?)`);
    spans.push({ name, from: local, to: dataStart + compressed });
    const raw = file.subarray(dataStart, dataStart + compressed);
    if (method === 0) need(compressed === uncompressed, `stored entry ${JSON.stringify(name)} has different compressed and uncompressed sizes`);
    // A deflate bomb is refused by its declared ratio before anything is inflated.
    else need(uncompressed <= compressed * 1032 + 1024, `entry ${JSON.stringify(name)} declares ${uncompressed} bytes from ${compressed} compressed ones, more than deflate can produce`);
    let data: Uint8Array | undefined;
    const read = (): Uint8Array => {
      if (data !== undefined) return data;
      let bytes: Uint8Array;
      if (method === 0) bytes = raw;
      else {
        try {
          bytes = inflateRawSync(raw, { maxOutputLength: Math.max(1, uncompressed) });
        } catch (error) {
          throw new CheckpointError(`not a valid .pt zip archive: entry ${JSON.stringify(name)} does not inflate to its declared ${uncompressed} bytes (${(error as Error).message})`);
        }
        need(bytes.length === uncompressed, `entry ${JSON.stringify(name)} inflates to ${bytes.length} bytes, not the declared ${uncompressed}`);
      }
      need(crc32(bytes) === crc, `entry ${JSON.stringify(name)} fails its CRC-32 check (corrupted)`);
      return (data = bytes);
    };
    entries.set(name, { uncompressed, read });
    at += 46 + nameLength + extraLength + commentLength;
  }
  spans.sort((a, b) => a.from - b.from);
  for (let i = 1; i < spans.length; i++) {
    const [a, b] = [spans[i - 1]!, spans[i]!];
    need(b.from >= a.to, `entries ${JSON.stringify(a.name)} and ${JSON.stringify(b.name)} overlap (bytes ${b.from}-${Math.min(a.to, b.to)})`);
  }
  return entries;
}

/** name → uncompressed bytes, in central directory order: every entry read (openZip reads only what is used). */
export function readZip(file: Uint8Array, limits: ZipLimits = DEFAULT_ZIP_LIMITS): Map<string, Uint8Array> {
  return new Map([...openZip(file, limits)].map(([name, entry]) => [name, entry.read()]));
}



/** A zip of stored entries, each one's data starting at a multiple of 64 bytes (torch.save's layout). */
export function writeZip(entries: readonly (readonly [string, Uint8Array])[]): Buffer {
  const chunks: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const nameBytes = Buffer.from(name, "utf8");
    const headerEnd = offset + 30 + nameBytes.length;
    // Padding as an extra field ("FB", as PyTorch writes it), so the data is aligned.
    const pad = (64 - ((headerEnd + 4) % 64)) % 64;
    const extra = Buffer.alloc(4 + pad);
    extra.writeUInt16LE(0x4246, 0);
    extra.writeUInt16LE(pad, 2);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(LOCAL, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0, 6); // flags
    local.writeUInt16LE(0, 8); // stored
    local.writeUInt32LE(0, 10); // time, date
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(extra.length, 28);
    chunks.push(local, nameBytes, extra, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    const record = Buffer.alloc(46);
    record.writeUInt32LE(CENTRAL, 0);
    record.writeUInt16LE(20, 4); // version made by
    record.writeUInt16LE(20, 6); // version needed
    record.writeUInt32LE(crc, 16);
    record.writeUInt32LE(data.length, 20);
    record.writeUInt32LE(data.length, 24);
    record.writeUInt16LE(nameBytes.length, 28);
    record.writeUInt32LE(offset, 42);
    central.push(record, nameBytes);
    offset += 30 + nameBytes.length + extra.length + data.length;
  }
  const centralBytes = Buffer.concat(central);
  need(offset < 0xffffffff && entries.length < 0xffff, "archives over 4 GB or 65,535 entries are not written");
  const end = Buffer.alloc(22);
  end.writeUInt32LE(EOCD, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(centralBytes.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...chunks, centralBytes, end]);
}
