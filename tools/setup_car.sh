#!/usr/bin/env bash
# Set up the car side of edgereid on a Jetson (JetPack 5) or an RDK X3 (Ubuntu 20.04 image), then check it.
#
#   bash tools/setup_car.sh jetson [PACKAGE]     PACKAGE: this repository (default) or an edgereid wheel
#   bash tools/setup_car.sh x3 [PACKAGE]
#
# Why a venv with --system-site-packages on the system Python 3.8: JetPack 5 installs TensorRT's Python
# bindings (and an OpenCV with GStreamer) for /usr/bin/python3.8 only, and the X3 image ships hobot_dnn
# for its system Python; a plain venv or another Python cannot import them. No PyTorch is installed:
# the car half never imports it. pycuda has no wheel for the Jetson and is built from source against
# JetPack's CUDA. Environment: VENV (default ~/edgereid-venv), PYTHON (default python3.8).
set -euo pipefail

device="${1:-}"
here="$(cd "$(dirname "$0")/.." && pwd)"
package="${2:-$here}"
venv="${VENV:-$HOME/edgereid-venv}"
python="${PYTHON:-python3.8}"

case "$device" in
  jetson|x3) ;;
  *) echo "usage: bash tools/setup_car.sh jetson|x3 [PACKAGE]" >&2; exit 2 ;;
esac
if ! command -v "$python" >/dev/null 2>&1; then
  echo "$python not found: the device bindings need the system Python 3.8 (set PYTHON=... to override)." >&2
  exit 2
fi

"$python" -m venv --system-site-packages "$venv"
# shellcheck disable=SC1091
. "$venv/bin/activate"
python -m pip install --upgrade "pip<24.1"   # the last pip range that still supports Python 3.8 well
if [ "$device" = jetson ]; then
  export PATH="/usr/local/cuda/bin:$PATH"
  if ! command -v nvcc >/dev/null 2>&1; then
    echo "nvcc not found under /usr/local/cuda/bin: install JetPack's CUDA (sudo apt install nvidia-jetpack)." >&2
    exit 2
  fi
  python -m pip install pycuda   # builds from source; needs python3-dev (sudo apt install python3-dev)
fi
python -m pip install "$package"   # numpy only: OpenCV, TensorRT, hobot_dnn come from the system
python -m edgereid.doctor --device "$device"
echo "venv ready: . $venv/bin/activate"
