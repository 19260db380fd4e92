#!/bin/bash
# One call on a GPU machine with torch (from the repository root): the catalog four
# times in parallel (CPU vectorized, CPU default, CUDA, CUDA capturable) and the
# float64 foreach op check, the two sqrt checks and the CUDA op recording, into $OUT
# (or ./torch-elsewhere-out).
set -u
OUT=${OUT:-$PWD/torch-elsewhere-out}
mkdir -p "$OUT"
here=scripts/torch-elsewhere
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import torch, platform; print(torch.__version__, torch.version.cuda, torch.backends.cpu.get_cpu_capability(), platform.processor())"
work=$(mktemp -d)
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
python3 $here/catalog.py "$work/cpu-vectorized" cpu >"$work/cpu-vectorized.log" 2>&1 &
ATEN_CPU_CAPABILITY=default python3 $here/catalog.py "$work/cpu-default" cpu >"$work/cpu-default.log" 2>&1 &
python3 $here/catalog.py "$work/cuda" cuda >"$work/cuda.log" 2>&1 &
python3 $here/catalog.py "$work/cuda-capturable" cuda-capturable >"$work/cuda-capturable.log" 2>&1 &
ATEN_CPU_CAPABILITY=default python3 $here/foreach_ops.py >"$work/foreach-ops.log" 2>&1 &
python3 $here/sqrt.py >"$work/sqrt.log" 2>&1 &
python3 $here/nadam_sqrt.py >"$work/nadam-sqrt.log" 2>&1 &
cases=$(for d in float32 float64 float16 bfloat16; do for p in forloop foreach; do for o in defaults weight-decay decoupled-weight-decay maximize betas-0.3-0.9 momentum-decay-zero; do echo options/$o/$d/$p; done; done; done)
python3 $here/cuda_ops.py "$work/cuda-ops.json" $cases >"$work/cuda-ops.log" 2>&1 &
wait
xz -c "$work/cuda-ops.json" >"$OUT/cuda-ops.json.xz"
for f in "$work"/*.log; do echo "== $f"; tail -c 2000 "$f"; cp "$f" "$OUT/"; done
tar -C "$work" -cJf "$OUT/runs.tar.xz" cpu-vectorized cpu-default cuda cuda-capturable
