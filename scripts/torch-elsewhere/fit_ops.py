"""Per op and dtype, how many of cuda_ops.py's recorded elements each candidate formula reproduces
(opmath rounding, fma or not, division or reciprocal): the formulas behind the spec's `cuda` profile.

    python3 fit_ops.py RECORDS.json
"""
import json, collections, struct, math
import numpy as np
from fractions import Fraction as F
import sys
R = json.load(open(sys.argv[1]))
def f32(x): return float(np.float32(x))
def bf16(x):
    b = struct.unpack('<I', struct.pack('<f', np.float32(x)))[0]
    if (b & 0x7fffffff) > 0x7f800000: return float('nan')
    b = (b + 0x7fff + ((b >> 16) & 1)) & 0xffff0000
    return struct.unpack('<f', struct.pack('<I', b))[0]
def rnd(dtype):
    # opmath rounding, then output rounding
    if dtype == 'torch.float64': return (lambda x: x), (lambda x: x), lambda a,b,c: float(F(a)*F(b)+F(c))
    op = f32
    fm = lambda a,b,c: f32(F(a)*F(b)+F(c)) if all(map(math.isfinite,(a,b,c))) else f32(a*b+c)
    out = {'torch.float32': f32, 'torch.float16': lambda x: float(np.float16(np.float32(x))), 'torch.bfloat16': bf16}[dtype]
    return op, out, fm
def cands(op, dt, a, o, sc):
    r, out, fma = rnd(dt)
    c = {}
    if op in ('mul_', '_foreach_mul_', 'mul'):
        s = sc
        c['a*s'] = out(r(a * r(s)))
        c['a*out(s)'] = out(r(a * out(r(s))))
    elif op in ('add_', '_foreach_add_') and o is None:
        c['a+s'] = out(r(a + r(sc)))
        c['a+out(s)'] = out(r(a + out(r(sc))))
    elif op in ('add', '_foreach_add', '_foreach_add_', 'add_') and o is not None:
        b = o[0]; al = sc
        c['fma(al,b,a)'] = out(fma(r(al), b, a))
        c['a+al*b'] = out(r(a + r(r(al) * b)))
        c['fma(out(al),b,a)'] = out(fma(out(r(al)), b, a))
        c['a+out(al)*b'] = out(r(a + r(out(r(al)) * b)))
    elif op in ('addcmul_', '_foreach_addcmul_'):
        t1, t2 = o; v = r(sc)
        c['fma(v*t1,t2,a)'] = out(fma(r(v*t1), t2, a))
        c['fma(v,t1*t2,a)'] = out(fma(v, r(t1*t2), a))
        c['a+(v*t1)*t2'] = out(r(a + r(r(v*t1)*t2)))
        c['a+v*(t1*t2)'] = out(r(a + r(v*r(t1*t2))))
    elif op in ('addcdiv_', '_foreach_addcdiv_'):
        t1, t2 = o; v = r(sc)
        c['a+(v*t1)/t2'] = out(r(a + r(r(v*t1)/t2)))
        c['fma(v,t1/t2,a)'] = out(fma(v, r(t1/t2), a))
        c['a+v*(t1/t2)'] = out(r(a + r(v*r(t1/t2))))
        c['fma(v*t1,1/t2,a)'] = out(fma(r(v*t1), r(1/t2), a))
    elif op in ('lerp_', '_foreach_lerp_'):
        e = o[0]; w = r(sc); d = r(e - a)
        if abs(w) < 0.5:
            c['fma(w,d,a)'] = out(fma(w, d, a)); c['a+w*d'] = out(r(a + r(w*d)))
        else:
            c['fma(-d,1-w,e)'] = out(fma(-d, r(1-w), e)); c['e-d*(1-w)'] = out(r(e - r(d*r(1-w)))); c['fma(w-1,d,e)'] = out(fma(r(w-1), d, e))
    elif op in ('div', '_foreach_div_', 'div_'):
        s = sc
        c['a/s'] = out(r(a / r(s))); c['a*(1/s)'] = out(r(a * r(1/r(s)))); c['a*r(1/s_double)'] = out(r(a * r(1/s)))
    elif op in ('sqrt', '_foreach_sqrt', 'sqrt_'):
        c['sqrt'] = out(r(math.sqrt(a))) if a >= 0 else float('nan')
    return c

def items(rec):
    """(dtype, self_before, others, scalar, result) per element."""
    op = rec['op']; A = rec['args']; K = rec['kwargs']
    fe = op.startswith('_foreach')
    selves = A[0] if fe else [A[0]]
    outs = rec['self_after'] if rec['out'] == 'self' or op.endswith('_') else rec['out']
    outs = outs if fe else [outs]
    res = []
    for i, s in enumerate(selves):
        if not isinstance(s, dict) or s['dev'] != 'cuda': continue
        dt = s['dtype']
        rest = [x[i] if (fe and isinstance(x, list)) else x for x in A[1:]]
        tensors = [x['t'] for x in rest if isinstance(x, dict) and len(x['t']) == len(s['t'])]
        scal = [x for x in rest if not (isinstance(x, dict) and len(x['t']) == len(s['t']))]
        sc = None
        for x in scal + list(K.values()):
            if isinstance(x, dict): sc = x['t'][0]
            elif isinstance(x, (int, float)) and not isinstance(x, bool): sc = x
        if 'alpha' in K: sc = K['alpha']
        if 'value' in K: sc = K['value']
        if op in ('add', 'add_', '_foreach_add', '_foreach_add_') and tensors and sc is None: sc = 1
        o = tensors if tensors else None
        for k, a in enumerate(s['t']):
            res.append((dt, a, None if o is None else [t[k] for t in o], sc, outs[i]['t'][k]))
    return res

stats = collections.defaultdict(lambda: collections.Counter())
for rec in R:
    for dt, a, o, sc, got in items(rec):
        if sc is None and rec['op'] not in ('sqrt', '_foreach_sqrt', 'sqrt_'): continue
        try: c = cands(rec['op'], dt, a, o, sc)
        except Exception as e: continue
        key = (rec['op'], dt)
        stats[key]['n'] += 1
        for name, v in c.items():
            if v == got or (v != v and got != got): stats[key][name] += 1
for key in sorted(stats):
    s = stats[key]; n = s.pop('n')
    print(f"{key[0]:20s} {key[1]:15s} n={n:6d} " + "  ".join(f"{k}={v}" for k, v in s.most_common()))
