import { describe, expect, test } from "vitest";
import { fmaExact } from "../../../spec/float/fma.ts";
import { FORMATS, roundToFormat } from "../../../spec/float/format.ts";
import { RandomFloats } from "../../../test/support/random-floats.ts";
import { fma32, fma64, roundBfloat16, roundHalf } from "./arith.ts";

describe("typed-array rounding primitives against the spec's exact ones", () => {
  test("fma32 on 200,000 random float32 triples, half of them near cancellation", () => {
    const rng = new RandomFloats(11);
    for (let i = 0; i < 200_000; i++) {
      const a = rng.float32();
      const b = rng.float32();
      const c = i % 2 ? rng.float32() : Math.fround(-a * b * (1 + rng.unit() * 2 ** -22));
      const got = fma32(a, b, c);
      const want = fmaExact(a, b, c, FORMATS.float32);
      if (!Object.is(got, want)) throw new Error(`fma32(${a}, ${b}, ${c}) = ${got}, exact ${want}`);
    }
  });

  test("fma32 on float32 double-rounding traps: a·b = 2^-24 + r·2^-71, c = 1", () => {
    let checked = 0;
    for (let A = 2 ** 23 + 1; checked < 200 && A < 2 ** 24; A++) {
      const B = Math.ceil(2 ** 47 / A);
      const r = A * B - 2 ** 47;
      if (B >= 2 ** 24 || r <= 0 || r >= 2 ** 18) continue;
      const [a, b] = [A * 2 ** -23, B * 2 ** -48];
      expect(fma32(a, b, 1)).toBe(1 + 2 ** -23);
      expect(fma32(-a, b, -1)).toBe(-(1 + 2 ** -23));
      checked++;
    }
    expect(checked).toBe(200);
  });

  test("fma64 on 200,000 random float64 triples, half of them near cancellation", () => {
    const rng = new RandomFloats(13);
    for (let i = 0; i < 200_000; i++) {
      const a = rng.float64();
      const b = rng.float64();
      const c = i % 2 ? rng.float64(-150, 150) : -a * b * (1 + rng.unit() * 2 ** -45);
      const got = fma64(a, b, c);
      const want = fmaExact(a, b, c, FORMATS.float64);
      if (!Object.is(got, want)) throw new Error(`fma64(${a}, ${b}, ${c}) = ${got}, exact ${want}`);
    }
  });

  test("float32 → float16 / bfloat16 rounding on 100,000 random float32 values", () => {
    const rng = new RandomFloats(12);
    for (let i = 0; i < 100_000; i++) {
      const x = rng.float32(-30, 20);
      expect(roundHalf(x)).toBe(roundToFormat(x, FORMATS.float16));
      const y = rng.float32(-140, 130);
      expect(roundBfloat16(y)).toBe(roundToFormat(y, FORMATS.bfloat16));
    }
  });
});
