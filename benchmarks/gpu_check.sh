#!/usr/bin/env bash
# The check to run once on a machine with an NVIDIA GPU (no MLflow needed there):
#   bash benchmarks/gpu_check.sh
# 1. the unit tests (they never import MLflow), 2. collect()'s GPU tags beside nvidia-smi,
# 3. first-call times in fresh processes (10 each) for each way of reading the GPU, and the warm call.
# Writes everything to $OUT/gpu_check.txt when OUT is set (else /tmp/gpu_check.txt).
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
log="${OUT:-/tmp}/gpu_check.txt"
exec > >(tee "$log") 2>&1
status=0
echo "== machine"
nvidia-smi -L
"$PY" --version
"$PY" -c "import psutil, wrapt; print('psutil', psutil.__version__, 'wrapt', wrapt.__version__)"
"$PY" -c "import importlib.util as u; print('mlflow importable:', u.find_spec('mlflow') is not None)"
ls -d /proc/driver/nvidia/gpus/* 2>/dev/null || echo "no /proc/driver/nvidia here"
echo
echo "== unit tests (no MLflow)"
timeout 240 "$PY" -m pytest tests/unit -q -p no:cacheprovider || status=1
echo
echo "== collect() beside nvidia-smi"
timeout 120 "$PY" benchmarks/gpu_compare.py || status=1
echo
echo "== timings"
timeout 240 "$PY" benchmarks/gpu_timing.py --processes 10 || status=1
echo
echo "gpu_check status: $status"
exit $status
