"""hb_mapper's YAML, the calibration files and build_x3.sh, all from the bundle's PreprocessSpec.

hb_mapper (Horizon OpenExplorer, X3 = march ``bernoulli2``) reads four groups:
model_parameters, input_parameters, calibration_parameters, compiler_parameters. With
``norm_type: data_mean_and_scale`` the BPU model does ``(pixel - mean_value) * scale_value``
itself, so the calibration files hold raw pixels (resized, training colour order, NCHW,
written with ``ndarray.tofile()``: no header) and the board feeds NV12/RGB/BGR bytes.
Paths in the YAML are relative to the bundle directory, where build_x3.sh runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from edgereid.errors import InputError
from edgereid.preprocess import PreprocessSpec
from edgereid.x3.nv12 import NV12_COLOR_RANGE

X3_INPUT_TYPES = ("nv12", "rgb", "bgr")
X3_CALIBRATION_TYPES = ("default", "kl", "max")
X3_CORES = (1, 2)
CAL_DTYPES = {"float32": np.float32, "uint8": np.uint8}
MARCH = "bernoulli2"
DEFAULT_CALIB_SAMPLES = 100

X3_ONNX_NAME = "model.x3.onnx"
CONFIG_NAME = "hb_mapper_config.yaml"
CALIB_DIR_NAME = "x3_calibration_data"
BUILD_SCRIPT_NAME = "build_x3.sh"
OUTPUT_PREFIX = "model_x3"
WORKING_DIR = "model_output"


def check_choice(name: str, value, valid: Sequence) -> None:
    if value not in valid:
        raise InputError(f"{name} must be one of {list(valid)}, received {value!r}.")


def mean_scale_values(spec: PreprocessSpec) -> Tuple[List[float], List[float]]:
    """hb_mapper's mean_value / scale_value in the training colour order.

    The model wants ``(p * spec.scale - mean) / std`` of raw pixels p; hb_mapper computes
    ``(p - mean_value) * scale_value``, so mean_value = mean / scale (= 255 * mean for 0..1
    models) and scale_value = scale / std (= 1 / (255 * std)).
    """
    mean = [float(m) / spec.scale for m in spec.mean]
    scale = [spec.scale / float(s) for s in spec.std]
    return mean, scale


def hb_mapper_config(
    spec: PreprocessSpec,
    input_name: str,
    input_type_rt: str = "nv12",
    calibration_type: str = "default",
    core_num: int = 1,
    cal_dtype: str = "float32",
    onnx_model: str = X3_ONNX_NAME,
    cal_data_dir: str = CALIB_DIR_NAME,
) -> Dict[str, Dict[str, object]]:
    """The four hb_mapper groups as ordered dicts (render with :func:`render_yaml`)."""
    check_choice("--x3-input", input_type_rt, X3_INPUT_TYPES)
    check_choice("--x3-calibration", calibration_type, X3_CALIBRATION_TYPES)
    check_choice("--x3-cores", core_num, X3_CORES)
    check_choice("calibration dtype", cal_dtype, tuple(CAL_DTYPES))
    if spec.layout != "NCHW":
        raise InputError(f"the X3 export needs an NCHW model, the PreprocessSpec says {spec.layout}.")
    mean, scale = mean_scale_values(spec)
    inputs: Dict[str, object] = {
        "input_name": input_name,
        "input_type_train": spec.color,
        "input_layout_train": "NCHW",
        "input_type_rt": input_type_rt,
    }
    if input_type_rt == "nv12":
        inputs["input_space_and_range"] = NV12_COLOR_RANGE
    else:
        inputs["input_layout_rt"] = "NHWC"
    inputs.update(
        {
            "input_shape": f"1x3x{spec.height}x{spec.width}",
            "input_batch": 1,
            "norm_type": "data_mean_and_scale",
            "mean_value": " ".join(_num(v) for v in mean),
            "scale_value": " ".join(_num(v) for v in scale),
        }
    )
    calib: Dict[str, object] = {
        "cal_data_dir": f"./{cal_data_dir}",
        "cal_data_type": cal_dtype,
        "preprocess_on": False,
        "calibration_type": calibration_type,
    }
    if calibration_type == "max":
        calib["max_percentile"] = 0.99999
    return {
        "model_parameters": {
            "onnx_model": f"./{onnx_model}",
            "march": MARCH,
            "output_model_file_prefix": OUTPUT_PREFIX,
            "working_dir": f"./{WORKING_DIR}",
            "layer_out_dump": False,
        },
        "input_parameters": inputs,
        "calibration_parameters": calib,
        "compiler_parameters": {
            "compile_mode": "latency",
            "debug": False,
            "core_num": int(core_num),
            "optimize_level": "O3",
        },
    }


def _num(v: float) -> str:
    return f"{v:.9g}"


def render_yaml(config: Dict[str, Dict[str, object]]) -> str:
    """Plain two-level YAML (strings single-quoted), so the host needs no YAML library."""
    lines = [
        "# hb_mapper config written by edgereid (reid-export --target x3). Paths are relative to",
        "# this bundle directory; run build_x3.sh here inside Horizon's OpenExplorer X3 toolchain.",
        "",
    ]
    for group, values in config.items():
        lines.append(f"{group}:")
        for key, value in values.items():
            if isinstance(value, bool):
                text = "True" if value else "False"
            elif isinstance(value, (int, float)):
                text = _num(value) if isinstance(value, float) else str(value)
            else:
                text = "'" + str(value).replace("'", "''") + "'"
            lines.append(f"  {key}: {text}")
        lines.append("")
    return "\n".join(lines)


def build_script(
    input_name: str, spec: PreprocessSpec, config_name: str = CONFIG_NAME, onnx_model: str = X3_ONNX_NAME
) -> str:
    """build_x3.sh: check, then compile, in the bundle directory."""
    shape = f"1x3x{spec.height}x{spec.width}"
    return f"""#!/usr/bin/env bash
# Compile this bundle's X3 model to a BPU .bin. Run inside Horizon's OpenExplorer toolchain
# for the X3 (hb_mapper, march bernoulli2), e.g. its docker image; nothing here runs elsewhere.
set -euo pipefail
cd "$(dirname "$0")"
hb_mapper checker --model-type onnx --march {MARCH} --model {onnx_model} --input-shape {input_name} {shape}
hb_mapper makertbin --config {config_name} --model-type onnx
# Name the compiled model in the manifest (role x3_bin) so reid-follow finds it by role.
if [ -f manifest.json ]; then
  python3 -c "import json; p='manifest.json'; m=json.load(open(p)); \
m['files']['x3_bin']='{WORKING_DIR}/{OUTPUT_PREFIX}.bin'; json.dump(m, open(p, 'w'), indent=2)"
fi
echo "BPU model: {WORKING_DIR}/{OUTPUT_PREFIX}.bin (role x3_bin in manifest.json)"
echo "Horizon's own INT8 simulation: {WORKING_DIR}/{OUTPUT_PREFIX}_quantized_model.onnx"
"""


def pick_calibration(n: int, k: int = DEFAULT_CALIB_SAMPLES) -> List[int]:
    """``min(n, k)`` evenly spread indices (deterministic)."""
    if n <= k:
        return list(range(n))
    return [int(i) for i in np.linspace(0, n - 1, k).round().astype(int)]


def write_calibration_data(
    directory: Path,
    spec: PreprocessSpec,
    crops_bgr: Sequence[np.ndarray],
    cal_dtype: str = "float32",
    samples: int = DEFAULT_CALIB_SAMPLES,
) -> List[Path]:
    """One raw file per sample: (3, H, W) pixels in training colour order, NOT normalised.

    Returns the written paths. Each file has 3*H*W*itemsize bytes and no header.
    """
    if not crops_bgr:
        raise InputError("the X3 calibration needs at least one crop; received none.")
    check_choice("calibration dtype", cal_dtype, tuple(CAL_DTYPES))
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, i in enumerate(pick_calibration(len(crops_bgr), samples)):
        raw = spec.raw_uint8([crops_bgr[i]])[0].astype(CAL_DTYPES[cal_dtype])
        path = directory / f"calib_{k:04d}.{spec.color}"
        raw.tofile(str(path))
        paths.append(path)
    return paths


def read_calibration_file(path: Path, spec: PreprocessSpec, cal_dtype: str = "float32") -> np.ndarray:
    """Read one calibration file back as (3, H, W)."""
    return np.fromfile(str(path), dtype=CAL_DTYPES[cal_dtype]).reshape(3, spec.height, spec.width)
