"""torch.sqrt against the correctly rounded square root (Python's math.sqrt), on
400,000 random float64 values of magnitudes 2^-40 to 2^40 and the same values as
float32: how many differ, by significand range, and how many x*rsqrt(x) reproduces.

    python3 sqrt.py          (ATEN_CPU_CAPABILITY as for the catalog)
"""
import math
import struct

import torch

torch.manual_seed(1)
n = 400_000
x = torch.rand(n, dtype=torch.float64) * torch.pow(2.0, torch.randint(-40, 40, (n,), dtype=torch.float64))
xs = x.tolist()
exact = torch.tensor([math.sqrt(v) for v in xs], dtype=torch.float64)
root = torch.sqrt(x)
bad = root != exact
print(torch.__version__, torch.backends.cpu.get_cpu_capability())
print("float64: %d of %d differ, %d of them below" % (int(bad.sum()), n, int((root < exact)[bad].sum())))
e = torch.floor(torch.log2(x))
significand = x / torch.pow(2.0, e)
for lo in (1.0, 1.25, 1.5, 1.75):
    inside = (significand >= lo) & (significand < lo + 0.25)
    print("  significand in [%.2f, %.2f): %d of %d" % (lo, lo + 0.25, int((bad & inside).sum()), int(inside.sum())))
print("  x*rsqrt(x) gives torch's result on %d of those" % int(((x * torch.rsqrt(x)) == root)[bad].sum()))
print("  0-d tensors: %d of 20000 differ" % sum(float(torch.sqrt(torch.tensor(v, dtype=torch.float64))) != math.sqrt(v) for v in xs[:20000]))
xf = x.float()
exact32 = torch.tensor([struct.unpack("f", struct.pack("f", math.sqrt(v)))[0] for v in xf.tolist()], dtype=torch.float32)
print("float32: %d of %d differ" % (int((torch.sqrt(xf) != exact32).sum()), n))
