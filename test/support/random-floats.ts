/**
 * A seeded source of test inputs (mulberry32), so that property tests are
 * reproducible: a failure names its seed and case index.
 */
import { bitsToF64 } from "../../spec/float/bits.ts";

export class RandomFloats {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform 32-bit unsigned integer. */
  uint32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1). */
  unit(): number {
    return this.uint32() / 2 ** 32;
  }

  int(lo: number, hi: number): number {
    return lo + Math.floor(this.unit() * (hi - lo + 1));
  }

  /** A finite float64 with a random sign, a full random significand and an exponent in [emin, emax]. */
  float64(emin = -60, emax = 60): number {
    const significand = BigInt(this.uint32()) * 2n ** 20n + BigInt(this.uint32() >>> 12);
    const bits = ((BigInt(this.int(emin, emax) + 1023) & 0x7ffn) << 52n) | significand;
    const x = bitsToF64(bits);
    return this.uint32() & 1 ? -x : x;
  }

  /** A float32 value (random bits with exponent in [emin, emax]). */
  float32(emin = -30, emax = 30): number {
    return Math.fround(this.float64(emin, emax));
  }
}
