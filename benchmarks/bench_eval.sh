#!/usr/bin/env bash
# Every reid-bench / reid-eval row of benchmarks/results/bench_eval.md, one command each.
# Reports land in $EDGEREID_BENCH_DIR/reports (default /tmp/edgereid-bench/reports).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
W=${EDGEREID_BENCH_DIR:-/tmp/edgereid-bench}
A=../shared/assets
mkdir -p "$W/reports"
export OMP_NUM_THREADS=1
# load average (1, 5, 15 min) before each step and at the end: the figures are only as good as the quiet
load() { echo "$(date -u +%H:%M:%S) $1 $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$W/reports/load.txt"; }
: > "$W/reports/load.txt"

load "before step 0"
# 0. split PKU-Reid by identity ($W/pku_calib, $W/pku_eval: symlinks) and export the bundles with
#    edgereid.export.export_bundle: osnet-u8s8 (target cpu, int8), osnet-s8s8 (target xavier, int8),
#    both calibrated on pku_calib only
$PY benchmarks/bench_eval.py bundles | tee "$W/reports/bundles.log"
load "before step 1"
# 1. FP32 matmul peak probe (1 thread) and OSNet's compute floor
$PY benchmarks/bench_eval.py peak --threads 1 | tee "$W/reports/peak.json"
load "before step 2"
# 2. ORT FP32 vs INT8 u8s8, interleaved, batch 1 and 8, 1 thread
$PY -m edgereid.cli.bench --compare "$W/osnet-u8s8:ort" "$W/osnet-u8s8:ort-int8" --batch 1,8 --threads 1 \
    --warmup 20 --iters 200 --no-progress --out "$W/reports/cmp_u8s8.json"
load "before step 3"
# 3. ORT FP32 vs INT8 s8s8
$PY -m edgereid.cli.bench --compare "$W/osnet-s8s8:ort" "$W/osnet-s8s8:ort-int8" --batch 1,8 --threads 1 \
    --warmup 20 --iters 200 --no-progress --out "$W/reports/cmp_s8s8.json"
load "before step 4-5"
# 4./5. accuracy on the 31 PKU-Reid ids never calibrated on (camera 1 query, camera 2 gallery):
#       FP32 and INT8 u8s8 / s8s8
$PY -m edgereid.cli.eval --bundle "$W/osnet-u8s8" --data "$W/pku_eval" --backend ort,ort-int8 \
    --threads 1 --no-progress --out "$W/reports/eval_u8s8.json"
$PY -m edgereid.cli.eval --bundle "$W/osnet-s8s8" --data "$W/pku_eval" --backend ort,ort-int8 \
    --threads 1 --no-progress --out "$W/reports/eval_s8s8.json"
load "before step 5b"
# 5b. FP32 only on all 62 ids (the assets README's protocol; INT8 is not scored here: half were calibrated on)
$PY -m edgereid.cli.eval --bundle "$W/osnet-u8s8" --data $A/reid_data/pku_reid --backend ort \
    --threads 1 --no-progress --out "$W/reports/eval_fp32_all62.json"
load "before step 6"
# 6. the follow loop on the walking video (YOLOX-Nano detector, OSNet FP32 embedder), 300 frames
$PY -m edgereid.cli.bench follow --source $A/video/one-by-one-person-detection.mp4 --bundle "$W/osnet-u8s8" \
    --backend ort --detector $A/detectors/yolox_nano.onnx --frames 300 --threads 1 --out "$W/reports/follow.json"
load end
