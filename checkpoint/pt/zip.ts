/**
 * The zip container of torch.save (PyTorch's "zip file format", torch >= 1.6):
 * a reader that trusts nothing (every offset and size is bounds-checked, CRCs
 * verified, sizes capped) and a writer that stores entries uncompressed with
 * their data 64-byte aligned, as torch.save does.
 */
import { crc32, inflateRawSync } from "node:zlib";
import { CheckpointError } from "./errors.ts";
import { memorySource, type ByteSource } from "./source.ts";

export interface ZipLimits {
  /** Most entries a file may have. */
  readonly maxEntries: number;
  /**
   * Largest entry read whole into memory, in bytes: the pickle, and a deflated
   * entry (torch.save stores its storages uncompressed; those are streamed,
   * whatever their size, and bounded only by the file).
   */
  readonly maxEntryBytes: number;
  /** Largest sum of the deflated entries' uncompressed sizes, in bytes. */
  readonly maxTotalBytes: number;
  /** Largest central directory, in bytes (read whole: about 100 bytes an entry). */
  readonly maxCentralDirectoryBytes: number;
}

export const DEFAULT_ZIP_LIMITS: ZipLimits = { maxEntries: 100_000, maxEntryBytes: 2 ** 31, maxTotalBytes: 2 ** 32, maxCentralDirectoryBytes: 2 ** 26 };

/** Bytes read at once when an entry is streamed, unless the caller says otherwise. */
export const DEFAULT_CHUNK_BYTES = 4 * 2 ** 20;

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const ZIP64_EOCD = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;

function need(ok: boolean, message: string): asserts ok {
  if (!ok) throw new CheckpointError(`not a valid .pt zip archive: ${message}`);
}

/** Little-endian fields of a block read from `base` in the file (offsets in messages are the file's). */
class Fields {
  constructor(
    private readonly b: Uint8Array,
    private readonly base: number,
    private readonly fileSize: number,
  ) {}
  u16(at: number): number {
    need(at >= 0 && at + 2 <= this.b.length, `a 2-byte field at offset ${this.base + at} lies outside the ${this.fileSize}-byte file`);
    return this.b[at]! | (this.b[at + 1]! << 8);
  }
  u32(at: number): number {
    need(at >= 0 && at + 4 <= this.b.length, `a 4-byte field at offset ${this.base + at} lies outside the ${this.fileSize}-byte file`);
    return (this.b[at]! | (this.b[at + 1]! << 8) | (this.b[at + 2]! << 16) | (this.b[at + 3]! << 24)) >>> 0;
  }
  u64(at: number): number {
    const value = this.u32(at) + this.u32(at + 4) * 2 ** 32;
    need(Number.isSafeInteger(value), `a 64-bit size at offset ${this.base + at} is too large`);
    return value;
  }
  bytes(from: number, to: number): Uint8Array {
    return this.b.subarray(from, to);
  }
}

/** `length` bytes of `source` at `offset` as fields, refused (not thrown as a range error) when they run past the end. */
function fieldsAt(source: ByteSource, offset: number, length: number, what: string): Fields {
  need(offset >= 0 && offset + length <= source.size, `${what} (offset ${offset}, ${length} bytes) runs past the end of the ${source.size}-byte file`);
  return new Fields(source.read(offset, length), offset, source.size);
}

/** One entry of an archive: where its data lies and what it declares; nothing read until asked. */
export interface ZipEntry {
  readonly name: string;
  readonly uncompressed: number;
  /** Whether its data is stored as is (streamed in place) rather than deflated. */
  readonly stored: boolean;
  /** Where its data starts in the file, and how many bytes it takes there. */
  readonly dataStart: number;
  readonly compressed: number;
  /** Its whole uncompressed bytes, CRC-checked; at most maxEntryBytes of them. */
  read(): Uint8Array;
  /**
   * Its uncompressed bytes from `from` to `to`, handed to `visit` in pieces of
   * at most `chunkBytes`. Streaming the whole entry checks its CRC-32 at the end.
   */
  stream(visit: (bytes: Uint8Array) => void, chunkBytes?: number, from?: number, to?: number): void;
  /** Checks its CRC-32, streaming it unless that was done already. */
  verify(chunkBytes?: number): void;
}

/**
 * The entries of a zip, name → entry, in central directory order: every header
 * checked now, no entry's data read until asked (an entry the reader never
 * uses costs nothing). Entries whose data overlap are refused: no zip writer
 * makes them, and they let a small file declare the same deflated bytes many times.
 * Read through positioned reads: memory holds the central directory, never the file.
 */
export function openZip(input: ByteSource | Uint8Array, limits: ZipLimits = DEFAULT_ZIP_LIMITS): Map<string, ZipEntry> {
  const source = input instanceof Uint8Array ? memorySource(input) : input;
  const size = source.size;
  need(size >= 22, `${size} bytes is shorter than an empty zip`);
  // The end-of-central-directory record is in the last 22 + 65535 bytes; the zip64 locator just before it.
  const tailStart = Math.max(0, size - 22 - 65535 - 20);
  const tail = new Fields(source.read(tailStart, size - tailStart), tailStart, size);
  let eocd = -1;
  for (let at = size - 22 - tailStart; at >= 0; at--) {
    if (tail.u32(at) === EOCD) {
      eocd = at;
      break;
    }
  }
  need(eocd >= 0, "no end-of-central-directory record (truncated, or not a zip)");
  let count = tail.u16(eocd + 10);
  let centralSize = tail.u32(eocd + 12);
  let offset = tail.u32(eocd + 16);
  if (count === 0xffff || centralSize === 0xffffffff || offset === 0xffffffff) {
    const locator = eocd - 20;
    need(locator >= 0 && tail.u32(locator) === ZIP64_LOCATOR, "zip64 sizes without a zip64 locator");
    const recordAt = tail.u64(locator + 8);
    const record = fieldsAt(source, recordAt, 56, "the zip64 end-of-central-directory record");
    need(record.u32(0) === ZIP64_EOCD, "the zip64 locator points at no zip64 record");
    count = record.u64(32);
    centralSize = record.u64(40);
    offset = record.u64(48);
  }
  need(count <= limits.maxEntries, `${count} entries; at most ${limits.maxEntries} are accepted`);
  need(offset + centralSize <= size, `the central directory (offset ${offset}, ${centralSize} bytes) runs past the end of the ${size}-byte file`);
  need(centralSize <= limits.maxCentralDirectoryBytes, `a central directory of ${centralSize} bytes; at most ${limits.maxCentralDirectoryBytes} are accepted`);
  const central = fieldsAt(source, offset, centralSize, "the central directory");

  const entries = new Map<string, ZipEntry>();
  const spans: { name: string; from: number; to: number }[] = [];
  let inflatedTotal = 0;
  let at = 0;
  for (let i = 0; i < count; i++) {
    need(central.u32(at) === CENTRAL, `central directory entry ${i} has a bad signature`);
    const method = central.u16(at + 10);
    const crc = central.u32(at + 16);
    let compressed = central.u32(at + 20);
    let uncompressed = central.u32(at + 24);
    const nameLength = central.u16(at + 28);
    const extraLength = central.u16(at + 30);
    const commentLength = central.u16(at + 32);
    let local = central.u32(at + 42);
    need(at + 46 + nameLength <= centralSize, `central directory entry ${i}'s name runs past the end of the file`);
    const name = Buffer.from(central.bytes(at + 46, at + 46 + nameLength)).toString("utf8");
    // zip64 extended information: the 0xffffffff fields, in order.
    let extra = at + 46 + nameLength;
    const extraEnd = extra + extraLength;
    while (extra + 4 <= extraEnd) {
      const id = central.u16(extra);
      const length = central.u16(extra + 2);
      if (id === 0x0001) {
        let field = extra + 4;
        if (uncompressed === 0xffffffff) (uncompressed = central.u64(field)), (field += 8);
        if (compressed === 0xffffffff) (compressed = central.u64(field)), (field += 8);
        if (local === 0xffffffff) local = central.u64(field);
      }
      extra += 4 + length;
    }
    need(!entries.has(name), `the entry ${JSON.stringify(name)} appears twice`);
    need(method === 0 || method === 8, `entry ${JSON.stringify(name)} uses compression method ${method}; only stored (0) and deflate (8) are read`);
    const stored = method === 0;
    if (!stored) {
      need(uncompressed <= limits.maxEntryBytes, `entry ${JSON.stringify(name)} declares ${uncompressed} bytes; at most ${limits.maxEntryBytes} are accepted`);
      inflatedTotal += uncompressed;
      need(inflatedTotal <= limits.maxTotalBytes, `the deflated entries declare more than ${limits.maxTotalBytes} bytes in all`);
    }
    const header = fieldsAt(source, local, 30, `entry ${JSON.stringify(name)}'s local header`);
    need(header.u32(0) === LOCAL, `entry ${JSON.stringify(name)}'s local header is missing at offset ${local}`);
    const dataStart = local + 30 + header.u16(26) + header.u16(28);
    need(dataStart + compressed <= size, `entry ${JSON.stringify(name)}'s ${compressed} bytes run past the end of the file (truncated?)`);
    spans.push({ name, from: local, to: dataStart + compressed });
    if (stored) need(compressed === uncompressed, `stored entry ${JSON.stringify(name)} has different compressed and uncompressed sizes`);
    // A deflate bomb is refused by its declared ratio before anything is inflated.
    else need(uncompressed <= compressed * 1032 + 1024, `entry ${JSON.stringify(name)} declares ${uncompressed} bytes from ${compressed} compressed ones, more than deflate can produce`);
    entries.set(name, new Entry(source, name, stored, crc, compressed, uncompressed, dataStart, limits.maxEntryBytes));
    at += 46 + nameLength + extraLength + commentLength;
  }
  spans.sort((a, b) => a.from - b.from);
  for (let i = 1; i < spans.length; i++) {
    const [a, b] = [spans[i - 1]!, spans[i]!];
    need(b.from >= a.to, `entries ${JSON.stringify(a.name)} and ${JSON.stringify(b.name)} overlap (bytes ${b.from}-${Math.min(a.to, b.to)})`);
  }
  return entries;
}

class Entry implements ZipEntry {
  private inflated: Uint8Array | undefined;
  private checked = false;
  constructor(
    private readonly source: ByteSource,
    readonly name: string,
    readonly stored: boolean,
    private readonly crc: number,
    readonly compressed: number,
    readonly uncompressed: number,
    readonly dataStart: number,
    private readonly maxWholeBytes: number,
  ) {}

  private corrupted(): never {
    need(false, `entry ${JSON.stringify(this.name)} fails its CRC-32 check (corrupted)`);
    throw new Error("unreachable");
  }

  read(): Uint8Array {
    if (this.inflated !== undefined) return this.inflated;
    need(this.uncompressed <= this.maxWholeBytes, `entry ${JSON.stringify(this.name)} declares ${this.uncompressed} bytes; at most ${this.maxWholeBytes} are read whole`);
    let bytes: Uint8Array;
    if (this.stored) bytes = this.source.read(this.dataStart, this.compressed);
    else {
      const raw = this.source.read(this.dataStart, this.compressed);
      try {
        bytes = inflateRawSync(raw, { maxOutputLength: Math.max(1, this.uncompressed) });
      } catch (error) {
        throw new CheckpointError(`not a valid .pt zip archive: entry ${JSON.stringify(this.name)} does not inflate to its declared ${this.uncompressed} bytes (${(error as Error).message})`);
      }
      need(bytes.length === this.uncompressed, `entry ${JSON.stringify(this.name)} inflates to ${bytes.length} bytes, not the declared ${this.uncompressed}`);
    }
    if (crc32(bytes) !== this.crc) this.corrupted();
    this.checked = true;
    // A deflated entry is kept (inflating again would cost as much); a stored one is read again when asked.
    if (!this.stored) this.inflated = bytes;
    return bytes;
  }

  stream(visit: (bytes: Uint8Array) => void, chunkBytes = DEFAULT_CHUNK_BYTES, from = 0, to = this.uncompressed): void {
    if (!(from >= 0 && from <= to && to <= this.uncompressed)) throw new RangeError(`bytes ${from}-${to} of a ${this.uncompressed}-byte entry`);
    if (!this.stored) {
      const bytes = this.read();
      for (let at = from; at < to; at += chunkBytes) visit(bytes.subarray(at, Math.min(to, at + chunkBytes)));
      return;
    }
    // The CRC covers the whole entry: it is checked when the whole entry goes by (once).
    const whole = from === 0 && to === this.uncompressed && !this.checked;
    let crc = 0;
    // One buffer for the whole stream: a piece is only valid during its visit.
    const scratch = Buffer.allocUnsafe(Math.min(chunkBytes, to - from));
    for (let at = from; at < to; at += chunkBytes) {
      const piece = this.source.read(this.dataStart + at, Math.min(chunkBytes, to - at), scratch);
      if (whole) crc = crc32(piece, crc);
      visit(piece);
    }
    if (whole) {
      if (crc !== this.crc) this.corrupted();
      this.checked = true;
    }
  }

  verify(chunkBytes = DEFAULT_CHUNK_BYTES): void {
    if (this.checked) return;
    if (this.stored) this.stream(() => undefined, chunkBytes);
    else this.read();
  }
}

/** name → uncompressed bytes, in central directory order: every entry read (openZip reads only what is used). */
export function readZip(file: Uint8Array, limits: ZipLimits = DEFAULT_ZIP_LIMITS): Map<string, Uint8Array> {
  return new Map([...openZip(file, limits)].map(([name, entry]) => [name, entry.read()]));
}

/** Where a zip is written: appended bytes, and earlier ones written again (a local header's CRC, known after its data). */
export interface ZipSink {
  write(bytes: Uint8Array): void;
  rewrite(position: number, bytes: Uint8Array): void;
}

/** Stored entries one after another, each one's data starting at a multiple of 64 bytes (torch.save's layout); zip64 where sizes or offsets need it. */
export class ZipWriter {
  private offset = 0;
  private readonly central: Buffer[] = [];
  private count = 0;
  /** `forceZip64`: zip64 sizes, offsets and end records for every entry, as a file over 4 GiB has them (for tests of small files). */
  constructor(
    private readonly sink: ZipSink,
    private readonly forceZip64 = false,
  ) {}

  private put(bytes: Uint8Array): void {
    this.sink.write(bytes);
    this.offset += bytes.length;
  }

  /** An entry of `size` bytes, which `fill` hands to `write` in order (its CRC-32 is taken on the way). */
  add(name: string, size: number, fill: (write: (bytes: Uint8Array) => void) => void): void {
    const nameBytes = Buffer.from(name, "utf8");
    const local = this.offset;
    const big = size >= 0xffffffff || this.forceZip64;
    // zip64 sizes in the local header when the entry needs them (as torch's writer does), then padding
    // as an extra field ("FB", as PyTorch writes it), so the data is aligned.
    const zip64 = big ? Buffer.alloc(20) : Buffer.alloc(0);
    if (big) {
      zip64.writeUInt16LE(0x0001, 0);
      zip64.writeUInt16LE(16, 2);
      zip64.writeBigUInt64LE(BigInt(size), 4);
      zip64.writeBigUInt64LE(BigInt(size), 12);
    }
    const headerEnd = local + 30 + nameBytes.length + zip64.length;
    const pad = (64 - ((headerEnd + 4) % 64)) % 64;
    const extra = Buffer.alloc(zip64.length + 4 + pad);
    zip64.copy(extra);
    extra.writeUInt16LE(0x4246, zip64.length);
    extra.writeUInt16LE(pad, zip64.length + 2);
    const header = Buffer.alloc(30);
    header.writeUInt32LE(LOCAL, 0);
    header.writeUInt16LE(big ? 45 : 20, 4); // version needed
    header.writeUInt16LE(0, 6); // flags
    header.writeUInt16LE(0, 8); // stored
    header.writeUInt32LE(0, 10); // time, date
    header.writeUInt32LE(0, 14); // CRC-32: written again below, once the data has gone by
    header.writeUInt32LE(big ? 0xffffffff : size, 18);
    header.writeUInt32LE(big ? 0xffffffff : size, 22);
    header.writeUInt16LE(nameBytes.length, 26);
    header.writeUInt16LE(extra.length, 28);
    this.put(header);
    this.put(nameBytes);
    this.put(extra);
    let crc = 0;
    let written = 0;
    fill((bytes) => {
      crc = crc32(bytes, crc);
      written += bytes.length;
      this.put(bytes);
    });
    if (written !== size) throw new Error(`zip entry ${name}: ${written} bytes written, ${size} declared`);
    const crcBytes = Buffer.alloc(4);
    crcBytes.writeUInt32LE(crc, 0);
    this.sink.rewrite(local + 14, crcBytes);

    const fields: bigint[] = [];
    if (big) fields.push(BigInt(size), BigInt(size));
    const farLocal = local >= 0xffffffff || this.forceZip64;
    if (farLocal) fields.push(BigInt(local));
    const centralExtra = Buffer.alloc(fields.length > 0 ? 4 + 8 * fields.length : 0);
    if (fields.length > 0) {
      centralExtra.writeUInt16LE(0x0001, 0);
      centralExtra.writeUInt16LE(8 * fields.length, 2);
      fields.forEach((f, i) => centralExtra.writeBigUInt64LE(f, 4 + 8 * i));
    }
    const record = Buffer.alloc(46);
    record.writeUInt32LE(CENTRAL, 0);
    record.writeUInt16LE(fields.length > 0 ? 45 : 20, 4); // version made by
    record.writeUInt16LE(fields.length > 0 ? 45 : 20, 6); // version needed
    record.writeUInt32LE(crc, 16);
    record.writeUInt32LE(big ? 0xffffffff : size, 20);
    record.writeUInt32LE(big ? 0xffffffff : size, 24);
    record.writeUInt16LE(nameBytes.length, 28);
    record.writeUInt16LE(centralExtra.length, 30);
    record.writeUInt32LE(farLocal ? 0xffffffff : local, 42);
    this.central.push(record, nameBytes, centralExtra);
    this.count++;
  }

  /** The central directory and the end records (zip64 ones when over 65,534 entries or 4 GiB). */
  finish(): void {
    const centralBytes = Buffer.concat(this.central);
    const start = this.offset;
    this.put(centralBytes);
    const zip64 = this.forceZip64 || this.count >= 0xffff || start >= 0xffffffff || centralBytes.length >= 0xffffffff;
    if (zip64) {
      const recordAt = this.offset;
      const record = Buffer.alloc(56);
      record.writeUInt32LE(ZIP64_EOCD, 0);
      record.writeBigUInt64LE(44n, 4); // size of the rest of the record
      record.writeUInt16LE(45, 12);
      record.writeUInt16LE(45, 14);
      record.writeBigUInt64LE(BigInt(this.count), 24);
      record.writeBigUInt64LE(BigInt(this.count), 32);
      record.writeBigUInt64LE(BigInt(centralBytes.length), 40);
      record.writeBigUInt64LE(BigInt(start), 48);
      const locator = Buffer.alloc(20);
      locator.writeUInt32LE(ZIP64_LOCATOR, 0);
      locator.writeBigUInt64LE(BigInt(recordAt), 8);
      locator.writeUInt32LE(1, 16); // disks
      this.put(record);
      this.put(locator);
    }
    const end = Buffer.alloc(22);
    end.writeUInt32LE(EOCD, 0);
    end.writeUInt16LE(zip64 ? 0xffff : this.count, 8);
    end.writeUInt16LE(zip64 ? 0xffff : this.count, 10);
    end.writeUInt32LE(zip64 ? 0xffffffff : centralBytes.length, 12);
    end.writeUInt32LE(zip64 ? 0xffffffff : start, 16);
    this.put(end);
  }
}

/** A sink that keeps what is written in memory; `bytes()` is the whole of it. */
export function memorySink(): { sink: ZipSink; bytes(): Buffer } {
  const chunks: Buffer[] = [];
  const starts: number[] = [];
  let length = 0;
  const sink: ZipSink = {
    write(bytes) {
      starts.push(length);
      // A copy: the bytes may be a view of a piece the writer reuses, or of a tensor that changes later.
      chunks.push(Buffer.from(bytes));
      length += bytes.length;
    },
    rewrite(position, bytes) {
      let i = starts.length - 1;
      while (starts[i]! > position) i--;
      Buffer.from(bytes).copy(chunks[i]!, position - starts[i]!);
    },
  };
  return { sink, bytes: () => Buffer.concat(chunks) };
}

/** A zip of stored entries in memory (torch.save's layout). */
export function writeZip(entries: readonly (readonly [string, Uint8Array])[]): Buffer {
  const { sink, bytes } = memorySink();
  const writer = new ZipWriter(sink);
  for (const [name, data] of entries) writer.add(name, data.length, (write) => write(data));
  writer.finish();
  return bytes();
}
