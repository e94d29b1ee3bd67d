#!/usr/bin/env bash
# The check to run once on a machine with an NVIDIA GPU (no MLflow needed there):
#   bash benchmarks/gpu_check.sh
# 0. bytecode compiled, as an installed package has it; 1. collect()'s GPU tags beside
# nvidia-smi (power limit and links included); 2. first-call times in fresh processes for each
# way of reading the GPU, the cold first collect(), the prefetched first call and the warm call;
# 3. NVML call by call; 4. the run's ledger against nvidia-smi (energy, memory peaks, each
# throttle share, the busy share, NVLink bytes, its own cost); 5. the unit tests (they never
# import MLflow).
# Writes everything to $OUT/gpu_check.txt when OUT is set (else /tmp/gpu_check.txt).
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
unset PYTHONDONTWRITEBYTECODE
log="${OUT:-/tmp}/gpu_check.txt"
exec > >(tee "$log") 2>&1
status=0
echo "== machine"
nvidia-smi -L
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
"$PY" --version
"$PY" -c "import psutil, wrapt; print('psutil', psutil.__version__, 'wrapt', wrapt.__version__)"
"$PY" -c "import importlib.util as u; print('mlflow importable:', u.find_spec('mlflow') is not None)"
nproc
nvidia-smi -q | grep -E -A4 "GPU Link Info|PCIe Generation|Link Width|Power Limit" | head -60
"$PY" -m compileall -q mlflow_sysmetrics
echo
echo "== collect() beside nvidia-smi"
timeout 120 "$PY" benchmarks/gpu_compare.py || status=1
echo
echo "== timings"
timeout 200 "$PY" benchmarks/gpu_timing.py --processes 10 || status=1
echo
echo "== NVML call by call"
timeout 90 "$PY" benchmarks/nvml_breakdown.py || status=1
echo
echo "== the run's ledger against nvidia-smi"
timeout 240 "$PY" benchmarks/gpu_ledger_check.py --seconds 20 || status=1
echo
echo "== unit tests (no MLflow)"
timeout 150 "$PY" -m pytest tests/unit -q -p no:cacheprovider -p no:randomly -x || status=1
echo
echo "gpu_check status: $status"
exit $status
