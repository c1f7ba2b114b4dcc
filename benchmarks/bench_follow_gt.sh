#!/usr/bin/env bash
# The follow loop against ground truth (BENCHMARKS.md "Follow loop against ground truth"):
# OSNet FP32 and INT8 bundles, each exported with labelled PKU-Reid crops (so the manifest carries
# the similarity scale the lock derives its thresholds from), on PETS09-S2L1 (person 4, enrolled
# from her labelled crops of frames 506-527, every third) and on the walking video (our labels,
# tests/data/one_by_one_gt.txt). Reports (+ .md and the .png plot over time) land in $W/follow_gt.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
W=${EDGEREID_BENCH_DIR:-/tmp/edgereid-bench}
A=../shared/assets
mkdir -p "$W/follow_gt"
load() { echo "$(date -u +%H:%M:%S) $1 $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$W/follow_gt/load.txt"; }
for precision in fp32 int8; do
  out="$W/follow_gt/osnet-$precision"
  [ -f "$out/manifest.json" ] || $BIN/reid-export --onnx $A/reid/osnet_x0_25_msmt17.onnx --target cpu \
      $([ $precision = int8 ] && echo --int8) --calib-data $A/reid_data/pku_reid --calib-size 128 --out "$out"
done
for precision in fp32 int8; do
  backend=$([ $precision = int8 ] && echo ort-int8 || echo ort)
  load "pets $precision"
  $BIN/reid-bench follow --source $A/video/pets09_s2l1/pets09_s2l1_480x360.mp4 --bundle "$W/follow_gt/osnet-$precision" \
      --backend $backend --detector $A/detectors/yolox_nano.onnx --det-conf 0.3 --frames 795 --threads 1 \
      --gt $A/video/pets09_s2l1/gt.txt --target-id 4 --gt-frames 529-794 --enroll-gt 506-527:3 \
      --no-tegrastats --out "$W/follow_gt/pets-$precision.json"
  load "walk $precision"
  $BIN/reid-bench follow --source $A/video/one-by-one-person-detection.mp4 --bundle "$W/follow_gt/osnet-$precision" \
      --backend $backend --detector $A/detectors/yolox_nano.onnx --det-conf 0.3 --frames 1394 --threads 1 \
      --gt tests/data/one_by_one_gt.txt --target-id 1 --no-tegrastats --out "$W/follow_gt/walk-$precision.json"
done
load "end"
