import { describe, expect, test } from "vitest";
import { RandomFloats } from "../../test/support/random-floats.ts";
import { f64Hex } from "./bits.ts";
import { fma32, fma64, fmaExact } from "./fma.ts";
import { FORMATS } from "./format.ts";

/**
 * float32 inputs a, b, c whose exact a·b + c lies just above a float32 midpoint,
 * but so close that the float64 sum rounds onto the midpoint itself: rounding
 * that float64 to float32 then ties to even, downwards — the wrong way.
 * a·b = 2^-24 + r·2^-71 with 0 < r < 2^18, c = 1: exact sum 1 + 2^-24 + r·2^-71.
 */
function doubleRoundingCases(count: number): [number, number, number][] {
  const cases: [number, number, number][] = [];
  for (let A = 2 ** 23 + 1; cases.length < count && A < 2 ** 24; A++) {
    const B = Math.ceil(2 ** 47 / A);
    const r = A * B - 2 ** 47; // exact: A·B < 2^48
    if (B < 2 ** 24 && r > 0 && r < 2 ** 18) cases.push([A * 2 ** -23, B * 2 ** -48, 1]);
  }
  return cases;
}

describe("fma32", () => {
  const cases = doubleRoundingCases(50);

  test("constructed cases defeat 'float64 multiply-add, then round to float32'", () => {
    expect(cases).toHaveLength(50);
    for (const [a, b, c] of cases) {
      expect(Math.fround(a) === a && Math.fround(b) === b).toBe(true);
      const naive = Math.fround(a * b + c);
      const exact = fmaExact(a, b, c, FORMATS.float32);
      expect(naive).toBe(1); // tied to even, downwards
      expect(exact).toBe(1 + 2 ** -23); // the exact sum is above the midpoint
    }
  });

  test("matches the exact BigInt fma on the constructed cases, negated too", () => {
    for (const [a, b, c] of cases) {
      expect(fma32(a, b, c)).toBe(fmaExact(a, b, c, FORMATS.float32));
      expect(fma32(-a, b, -c)).toBe(fmaExact(-a, b, -c, FORMATS.float32));
    }
  });

  test("matches the exact BigInt fma on 100,000 random float32 triples", () => {
    const rng = new RandomFloats(32);
    for (let i = 0; i < 100_000; i++) {
      const a = rng.float32();
      const b = rng.float32();
      // c near a·b in magnitude so that cancellation and ties are exercised
      const c = i % 2 ? rng.float32() : Math.fround(-a * b * (1 + rng.unit() * 2 ** -20));
      const got = fma32(a, b, c);
      const want = fmaExact(a, b, c, FORMATS.float32);
      if (!Object.is(got, want)) throw new Error(`case ${i}: fma32(${a}, ${b}, ${c}) = ${got}, exact ${want}`);
    }
  });

  test("special values", () => {
    expect(fma32(Infinity, 0, 1)).toBeNaN();
    expect(fma32(Infinity, 2, -Infinity)).toBeNaN();
    expect(fma32(Infinity, -2, 1)).toBe(-Infinity);
    expect(fma32(NaN, 1, 1)).toBeNaN();
    expect(Object.is(fma32(-0, 1, -0), -0)).toBe(true);
    expect(Object.is(fma32(1, 1, -1), 0)).toBe(true); // exact cancellation is +0
    expect(fma32(2 ** 100, 2 ** 100, 0)).toBe(Infinity); // overflows float32
    expect(fma32(2 ** -100, 2 ** -100, 0)).toBe(0); // underflows float32
  });
});

describe("fma64", () => {
  test("matches the exact BigInt fma on 100,000 random float64 triples", () => {
    const rng = new RandomFloats(64);
    for (let i = 0; i < 100_000; i++) {
      const a = rng.float64();
      const b = rng.float64();
      const c = i % 3 === 0 ? rng.float64(-200, 200) : -a * b * (1 + rng.unit() * 2 ** -40);
      const got = fma64(a, b, c);
      const want = fmaExact(a, b, c, FORMATS.float64);
      if (!Object.is(got, want)) throw new Error(`case ${i}: fma64(${f64Hex(a)}, ${f64Hex(b)}, ${f64Hex(c)}) = ${f64Hex(got)}, exact ${f64Hex(want)}`);
    }
  });

  test("exponent extremes take the exact path and stay exact", () => {
    const rng = new RandomFloats(65);
    for (let i = 0; i < 5_000; i++) {
      const a = rng.float64(-1074 + 60, 1000);
      const b = rng.float64(-1000, 20);
      const c = rng.float64(-1074 + 60, 1023);
      expect(Object.is(fma64(a, b, c), fmaExact(a, b, c, FORMATS.float64))).toBe(true);
    }
    expect(fma64(Number.MIN_VALUE, 0.5, 0)).toBe(0); // ties to even at the bottom
    expect(fma64(Number.MIN_VALUE, 1.5, 0)).toBe(2 * Number.MIN_VALUE);
    expect(fma64(Number.MAX_VALUE, 2, -Number.MAX_VALUE)).toBe(Number.MAX_VALUE); // no intermediate overflow
  });

  test("a·b + c where the unfused result differs", () => {
    const a = 1 + 2 ** -30;
    const b = 1 - 2 ** -30;
    // a·b = 1 - 2^-60 exactly; unfused, it rounds to 1 and the sum to 0.
    expect(a * b - 1).toBe(0);
    expect(fma64(a, b, -1)).toBe(-(2 ** -60));
  });
});
