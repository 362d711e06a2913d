#!/usr/bin/env bash
# The GPU checks in one command (see benchmarks/gpu_check.py): bf16 parity, decode tok/s at 1/16/64,
# MTP acceptance, a 32K prefill. Figures go to bench-out/gpu.json (and $OUT/gpu.json when set).
#   benchmarks/gpu_check.sh [--device cuda:0] [--checks parity,throughput,mtp,prefill]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
out="bench-out/gpu.json"
HF_HUB_OFFLINE=1 PYTHONPATH="$PWD" "$PYTHON" benchmarks/gpu_check.py --out "$out" "$@"
if [ -n "${OUT:-}" ]; then cp "$out" "$OUT/gpu.json"; fi
