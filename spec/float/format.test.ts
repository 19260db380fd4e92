import { describe, expect, test } from "vitest";
import { RandomFloats } from "../../test/support/random-floats.ts";
import { decodeHex, elementBits, elementFromBits, encodeHex } from "./codec.ts";
import { FORMATS, roundDyadic, roundToFormat, toDyadic } from "./format.ts";
import { hexFloat } from "./hex-float.ts";

const SIXTEEN_BIT = [
  ["float16", FORMATS.float16],
  ["bfloat16", FORMATS.bfloat16],
] as const;

describe.each(SIXTEEN_BIT)("%s", (dtype, format) => {
  // Every finite non-negative value of the format, in increasing order.
  const values: number[] = [];
  for (let bits = 0; bits < 0x8000; bits++) {
    const x = elementFromBits(dtype, BigInt(bits));
    if (Number.isFinite(x)) values.push(x);
  }

  test("every finite value rounds to itself and survives the hex round trip", () => {
    for (const x of values) {
      expect(roundToFormat(x, format)).toBe(x);
      expect(decodeHex(dtype, encodeHex(dtype, [x, -x]))).toEqual([x, -x]);
    }
  });

  test("midpoints round to even, and the next float64 either side rounds to the nearer value", () => {
    for (let i = 0; i + 1 < values.length; i++) {
      const lo = values[i]!;
      const hi = values[i + 1]!;
      const mid = (lo + hi) / 2; // exact in float64
      const even = elementBits(dtype, lo) % 2n === 0n ? lo : hi;
      expect(roundToFormat(mid, format)).toBe(even);
      expect(roundToFormat(mid + Math.abs(mid) * 2 ** -52, format)).toBe(hi);
      expect(roundToFormat(mid - Math.abs(mid) * 2 ** -52, format)).toBe(lo);
    }
  });

  test("overflow goes to infinity at the midpoint above the largest finite value", () => {
    const max = values.at(-1)!;
    const ulp = max - values.at(-2)!;
    expect(roundToFormat(max + ulp / 2, format)).toBe(Infinity);
    expect(roundToFormat(max + ulp / 4, format)).toBe(max);
    expect(roundToFormat(-(max + ulp), format)).toBe(-Infinity);
  });

  test("NaN, infinities and signed zeros", () => {
    expect(decodeHex(dtype, encodeHex(dtype, [NaN]))[0]).toBeNaN();
    expect(decodeHex(dtype, encodeHex(dtype, [Infinity, -Infinity]))).toEqual([Infinity, -Infinity]);
    expect(Object.is(decodeHex(dtype, encodeHex(dtype, [-0]))[0], -0)).toBe(true);
    expect(() => encodeHex(dtype, [0.1])).toThrow(/not a/);
  });
});

describe("exact rounding", () => {
  test("roundDyadic agrees with Math.fround on random float64 values", () => {
    const rng = new RandomFloats(24);
    for (let i = 0; i < 50_000; i++) {
      const x = rng.float64(-160, 130);
      expect(roundDyadic(toDyadic(x), FORMATS.float32)).toBe(Math.fround(x));
    }
  });

  test("float32 and float64 hex round trips keep the bits", () => {
    const hex32 = "3efeeb0fffc000007f800000800000000000000100000000";
    expect(encodeHex("float32", decodeHex("float32", hex32)).replace("7fc00000", "ffc00000")).toBe(hex32);
    const hex64 = "3fdfdd61d747b34a8000000000000000fff0000000000000";
    expect(encodeHex("float64", decodeHex("float64", hex64))).toBe(hex64);
  });

  test("hexFloat reads C99 hexadecimal literals", () => {
    expect(hexFloat("0x1.8p52")).toBe(1.5 * 2 ** 52);
    expect(hexFloat("-0x1.62e42fefa3800p-1")).toBe(-0.6931471805598903);
    expect(() => hexFloat("1.5")).toThrow(SyntaxError);
  });
});
