"""CPython's float `x ** y` on the inputs NAdam uses, as test vectors for the spec's pow.

Run by scripts/golden.mjs:  python3 pow_vectors.py OUT.json
CPython's float pow is the C library's pow(); on glibc it is not correctly rounded
and V8's Math.pow differs from it, which is why the spec carries its own pow.

Families (x fixed, y = t * step for t = 1..count, computed as that IEEE product so
a reader can recompute y exactly): the bias correction beta2 ** t and the momentum
schedule 0.96 ** (t * momentum_decay). Pairs: explicit (x, y) inputs: the foreach
path's bias_correction2 ** 0.5, and random inputs over a wide range.
"""
import json
import platform
import random
import struct
import sys


def h(x):
    return struct.pack(">d", x).hex()


def main():
    out = sys.argv[1]
    families = []
    for x, step, count in ((0.999, 1.0, 10000), (0.99, 1.0, 2000), (0.96, 0.004, 10000), (0.96, 0.006, 3000), (0.96, 0.005, 2000)):
        results = "".join(h(x ** (t * step)) for t in range(1, count + 1))
        families.append({"x": x, "y_step": step, "count": count, "results": results})
    pairs = []
    for t in range(1, 5001):
        bc2 = 1 - 0.999 ** t
        pairs.append((bc2, 0.5))
    rng = random.Random(2026)
    for _ in range(4000):
        pairs.append((rng.random() * 3.0, (rng.random() * 2 - 1) * 60.0))
    for _ in range(1000):
        pairs.append((rng.random() * 2.0 ** rng.randint(-1074, 1000), (rng.random() * 2 - 1) * 4.0))
    for x, y in ((0.0, 0.5), (0.0, -1.0), (-2.0, 3.0), (-2.0, 0.5), (1.0, float("nan")), (float("inf"), -0.5), (2.0, 1024.0), (0.5, 1075.0), (0.5, 1074.5)):
        pairs.append((x, y))

    def pw(x, y):
        try:
            return x ** y
        except OverflowError:
            return float("inf")
        except ZeroDivisionError:
            return float("inf")

    doc = {
        "format": "nadam-pow-vectors/1",
        "python": platform.python_version(),
        "libc": "%s %s" % platform.libc_ver(),
        "machine": platform.machine(),
        "families": families,
        # x, y, x ** y as float64 hex, 48 digits per vector; complex results (negative
        # x, fractional y) are written as NaN, which is what C's pow returns.
        "pairs": "".join(h(x) + h(y) + h(r if isinstance(r, float) else float("nan")) for x, y in pairs for r in [pw(x, y)]),
    }
    with open(out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
