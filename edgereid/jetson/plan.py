"""Every decision of a TensorRT engine build, as plain data: tested on the host, used on the Jetson.

One :class:`EnginePlan` per build mode. The same plan drives both the ``trtexec`` line in the
bundle's ``build_engine.sh`` and the TensorRT Python API builder (``edgereid.jetson.engine``),
so the two can never disagree on flags, shapes or the calibration cache.

Modes:
    fp16        FP16 GPU engine from model.onnx.
    int8-cache  implicit INT8 from model.onnx + calib.cache (FP16 fallback for other layers).
    int8-qdq    explicit INT8 from model.int8.qdq.onnx (scales inside the model).
    dla0/dla1   DLA core 0/1 with GPU fallback; INT8 from calib.cache when the bundle has one
                (DLA cannot read QDQ), else FP16. Needs a static batch.

Shapes: an ONNX input with a static batch takes no shape flags and no optimization profile.
trtexec 8.5 refuses ``--shapes``/``--minShapes``/... for a static model ("Static model does not
take explicit shapes", NVIDIA/TensorRT release/8.5 samples/common/sampleEngines.cpp,
setupNetworkAndConfig), and only adds a profile when some input is dynamic; the API builder
follows the same rule.

Every trtexec line also writes ``<engine stem>.layers.json`` (--exportLayerInfo) and
``<engine stem>.profile.json`` (--exportProfile) with --profilingVerbosity=detailed, so the real
precision and DLA/GPU placement of each layer come back to the host (``reid-bench layers``).
Layers the accuracy-aware search kept in float (manifest ``int8.mixed_precision.float_layers``)
have no Q/DQ in the QDQ model, so an ``int8-qdq`` engine runs them in FP16 by itself. The
implicit-INT8 modes (``int8-cache``, DLA) quantize model.onnx wherever TensorRT finds it faster,
so they get the same layers pinned to FP16: ``--precisionConstraints=obey`` (``prefer`` on the DLA,
whose rules may still move a layer) and ``--layerPrecisions=<node>:fp16,...``. The ONNX parser names
each layer after its node (onnx-tensorrt 8.5-GA, ModelImporter.cpp); trtexec splits the list at
``,`` and each item at ``:`` (samples/common/sampleOptions.cpp, getLayerPrecisions), so a node
name holding either cannot be pinned and is reported in the plan's notes.
A mode that reads calib.cache first compares the cache header with the TensorRT of the trtexec
it runs: TensorRT ignores a cache of another version without an error
(``TRT-<NV_TENSORRT_VERSION>-EntropyCalibration2``; trtexec prints its version as
``[TensorRT v8502]``, samples/common/logging.h defineTest).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence, Tuple

from edgereid.calibration.trt_cache import CALIBRATOR
from edgereid.errors import InputError

MODES = ("fp16", "int8-cache", "int8-qdq", "dla0", "dla1")
WORKSPACE_MIB = 1024
TIMING_CACHE = "timing.cache"
TRTEXEC_DEFAULT = "/usr/src/tensorrt/bin/trtexec"

Shape = Tuple[int, ...]


@dataclass(frozen=True)
class BatchProfile:
    """Batch sizes of the optimization profile; min == opt == max is a static batch."""

    min: int
    opt: int
    max: int

    @property
    def static(self) -> bool:
        return self.min == self.opt == self.max

    @classmethod
    def parse(cls, text: str) -> BatchProfile:
        """``"1:4:8"`` -> BatchProfile(1, 4, 8); a clear error otherwise."""
        parts = str(text).split(":")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            values = []
        if len(values) != 3 or not 1 <= values[0] <= values[1] <= values[2]:
            raise InputError(
                f"--dynamic-batch must be MIN:OPT:MAX with 1 <= MIN <= OPT <= MAX, received {text!r}."
            )
        return cls(*values)

    def to_dict(self) -> Dict[str, int]:
        return {"min": self.min, "opt": self.opt, "max": self.max}


@dataclass(frozen=True)
class EnginePlan:
    """What to build: inputs, precision flags, profile, cache and device.

    Attributes:
        mode: one of MODES.
        onnx: bundle-relative ONNX file the parser reads.
        engine: bundle-relative engine file written.
        input_name: the network input.
        chw: (3, H, W).
        profile: batch profile.
        fp16, int8: builder precision flags.
        calib_cache: bundle-relative calibration cache (implicit INT8), or None.
        dla_core: DLA core or None for the GPU.
        gpu_fallback: let layers DLA cannot run fall back to the GPU.
        dynamic: the ONNX input's batch axis is symbolic (needs shape flags and a profile).
        fp16_layers: layer (= ONNX node) names pinned to FP16 in an implicit-INT8 build.
        precision_constraints: ``obey`` | ``prefer`` for ``fp16_layers`` (TensorRT 8.5 builder flags
            OBEY_PRECISION_CONSTRAINTS / PREFER_PRECISION_CONSTRAINTS).
    """

    mode: str
    onnx: str
    engine: str
    input_name: str
    chw: Shape
    profile: BatchProfile
    fp16: bool = True
    int8: bool = False
    calib_cache: str | None = None
    dla_core: int | None = None
    gpu_fallback: bool = False
    workspace_mib: int = WORKSPACE_MIB
    dynamic: bool | None = None
    notes: List[str] = field(default_factory=list)
    fp16_layers: Tuple[str, ...] = ()
    precision_constraints: str = "obey"

    def __post_init__(self) -> None:
        if self.dynamic is None:  # None means: the ONNX batch axis is dynamic iff the profile is
            object.__setattr__(self, "dynamic", not self.profile.static)
        if not self.dynamic and not self.profile.static:
            raise InputError(
                f"the ONNX input {self.input_name!r} has a static batch, but the profile is "
                f"{self.profile.min}:{self.profile.opt}:{self.profile.max}; re-export with --dynamic-batch."
            )

    @property
    def layer_info(self) -> str:
        """Bundle-relative --exportLayerInfo file of this engine."""
        return _stem(self.engine) + ".layers.json"

    @property
    def profile_json(self) -> str:
        """Bundle-relative --exportProfile file of this engine."""
        return _stem(self.engine) + ".profile.json"

    def shape(self, batch: int) -> Shape:
        return (batch, *self.chw)

    @property
    def profile_shapes(self) -> Tuple[Shape, Shape, Shape]:
        """(min, opt, max) input shapes of the optimization profile."""
        p = self.profile
        return self.shape(p.min), self.shape(p.opt), self.shape(p.max)

    @property
    def needs_calibration_profile(self) -> bool:
        """A dynamic-batch implicit-INT8 build also needs a calibration profile (TensorRT 8.5)."""
        return self.calib_cache is not None and bool(self.dynamic)

    @property
    def builder_flags(self) -> List[str]:
        """tensorrt.BuilderFlag member names to set."""
        flags = []
        if self.fp16:
            flags.append("FP16")
        if self.int8:
            flags.append("INT8")
        if self.gpu_fallback:
            flags.append("GPU_FALLBACK")
        if self.fp16_layers:
            flags.append(f"{self.precision_constraints.upper()}_PRECISION_CONSTRAINTS")
        return flags


def pinnable_layers(names: Sequence[str]) -> Tuple[Tuple[str, ...], List[str]]:
    """(names trtexec's --layerPrecisions can carry, notes on those it cannot)."""
    ok = tuple(n for n in names if n and not set(n) & set(",:'"))
    bad = [n for n in names if n not in ok]
    notes = [f"layer {n!r} stays float in the QDQ model but cannot be pinned to FP16 here: its name holds "
             "',', ':' or a quote, which trtexec's --layerPrecisions cannot carry" for n in bad]
    return ok, notes


def plan_engine(
    mode: str,
    input_name: str,
    chw: Sequence[int],
    profile: BatchProfile,
    files: Dict[str, str],
    dynamic: bool | None = None,
    float_layers: Sequence[str] = (),
) -> EnginePlan:
    """The plan of one build mode for a bundle with ``files`` (role -> relative path).

    ``dynamic``: whether the ONNX input's batch axis is symbolic; None: dynamic iff the profile is.
    ``float_layers``: layers the INT8 search kept in float; pinned to FP16 in implicit-INT8 modes.

    Raises:
        InputError: unknown mode, a mode whose file the bundle lacks, DLA with a dynamic batch.
    """
    if mode not in MODES:
        raise InputError(f"unknown engine mode {mode!r}; valid: {list(MODES)}.")
    chw = tuple(int(c) for c in chw)
    onnx = files.get("onnx", "model.onnx")
    cache = files.get("calib_cache")
    pinned, notes = pinnable_layers(list(float_layers)) if cache else ((), [])
    if mode == "fp16":
        return EnginePlan(mode, onnx, "model.fp16.engine", input_name, chw, profile, dynamic=dynamic)
    if mode == "int8-cache":
        if cache is None:
            raise InputError("mode int8-cache needs a calibration cache: export with --int8.")
        return EnginePlan(mode, onnx, "model.int8.engine", input_name, chw, profile, int8=True, calib_cache=cache,
                          dynamic=dynamic, fp16_layers=pinned, notes=notes)
    if mode == "int8-qdq":
        qdq = files.get("onnx_int8_qdq")
        if qdq is None:
            raise InputError("mode int8-qdq needs the QDQ model: export with --target xavier --int8.")
        return EnginePlan(mode, qdq, "model.int8qdq.engine", input_name, chw, profile, int8=True, dynamic=dynamic)
    core = int(mode[-1])
    if not profile.static:
        raise InputError(
            f"DLA needs a static batch (TensorRT 8.5 DLA has no dynamic shapes); the profile is "
            f"{profile.min}:{profile.opt}:{profile.max}. Export with --batch N for --dla."
        )
    return EnginePlan(
        mode, onnx, f"model.dla{core}.engine", input_name, chw, profile,
        int8=cache is not None, calib_cache=cache, dla_core=core, gpu_fallback=True, dynamic=dynamic,
        fp16_layers=pinned, precision_constraints="prefer", notes=notes,
    )


def plans_for_bundle(manifest: Any, modes: Sequence[str] | None = None) -> List[EnginePlan]:
    """Plans of every mode the bundle supports (or of ``modes``), from its manifest."""
    trt = manifest.extra.get("trt", {})
    profile = BatchProfile(**trt.get("profile", {"min": 1, "opt": 1, "max": 1}))
    inp = manifest.inputs[0]
    chw = tuple(int(d) for d in inp["shape"][1:])
    dynamic = not isinstance(inp["shape"][0], int) or int(inp["shape"][0]) < 1  # "batch", "?" or -1
    if modes is None:
        modes = ["fp16"]
        if "calib_cache" in manifest.files:
            modes.append("int8-cache")
        if "onnx_int8_qdq" in manifest.files:
            modes.append("int8-qdq")
        if trt.get("dla"):
            modes += ["dla0", "dla1"]
    float_layers = ((manifest.extra.get("int8") or {}).get("mixed_precision") or {}).get("float_layers") or []
    return [plan_engine(m, inp["name"], chw, profile, manifest.files, dynamic, float_layers) for m in modes]


def _dims(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


def trtexec_args(plan: EnginePlan) -> List[str]:
    """trtexec arguments (TensorRT 8.5 spelling) for ``plan``, in a fixed order."""
    args = [f"--onnx={plan.onnx}", f"--saveEngine={plan.engine}"]
    if plan.fp16:
        args.append("--fp16")
    if plan.int8:
        args.append("--int8")
    if plan.calib_cache:
        args.append(f"--calib={plan.calib_cache}")
    if plan.dla_core is not None:
        args.append(f"--useDLACore={plan.dla_core}")
    if plan.gpu_fallback:
        args.append("--allowGPUFallback")
    if plan.fp16_layers:
        args += [f"--precisionConstraints={plan.precision_constraints}",
                 "--layerPrecisions=" + ",".join(f"{name}:fp16" for name in plan.fp16_layers)]
    if plan.dynamic:  # a static input takes no shape flag in trtexec 8.5 (see the module docstring)
        mn, opt, mx = plan.profile_shapes
        name = plan.input_name
        args += [f"--minShapes={name}:{_dims(mn)}", f"--optShapes={name}:{_dims(opt)}",
                 f"--maxShapes={name}:{_dims(mx)}"]
    args += [f"--memPoolSize=workspace:{plan.workspace_mib}", f"--timingCacheFile={TIMING_CACHE}",
             "--profilingVerbosity=detailed", f"--exportLayerInfo={plan.layer_info}",
             f"--exportProfile={plan.profile_json}"]
    return args


def trtexec_line(plan: EnginePlan) -> str:
    return '"$TRTEXEC" ' + " ".join(_quote(a) for a in trtexec_args(plan))


def build_script(plans: Sequence[EnginePlan], trt_version: str) -> str:
    """``build_engine.sh``: one function per mode; ``./build_engine.sh [mode ...]`` (default: first)."""
    head = [
        "#!/usr/bin/env bash",
        f"# Build TensorRT {trt_version} engines for this bundle on the Jetson (run it inside the bundle).",
        "# Generated by reid-export; every line below is also what edgereid.jetson.engine builds from Python.",
        "set -euo pipefail",
        'cd "$(dirname "$0")"',
        f'TRTEXEC="${{TRTEXEC:-{TRTEXEC_DEFAULT}}}"',
        "",
    ]
    body = []
    if any(p.calib_cache for p in plans):
        body += CACHE_CHECK
    for plan in plans:
        check = [f"  check_cache {_quote(plan.calib_cache)}"] if plan.calib_cache else []
        body += [f"build_{plan.mode.replace('-', '_')}() {{", *check, f"  {trtexec_line(plan)}", "}", ""]
    modes = " ".join(p.mode for p in plans)
    tail = [
        f'modes=("${{@:-{plans[0].mode}}}")',
        'for mode in "${modes[@]}"; do',
        '  case "$mode" in',
    ]
    for plan in plans:
        tail.append(f"    {plan.mode}) build_{plan.mode.replace('-', '_')} ;;")
    tail += [
        f'    *) echo "unknown mode $mode; valid: {modes}" >&2; exit 2 ;;',
        "  esac",
        "done",
        "",
    ]
    return "\n".join(head + body + tail)


# bash: refuse a calib.cache whose header is not this trtexec's TensorRT version (see module docstring)
CACHE_CHECK = [
    "check_cache() {",
    "  local want have help ver",
    '  want="$(head -n 1 "$1" | tr -d \'\\r\')"',
    '  help="$("$TRTEXEC" --help 2>&1 || true)"',
    '  if [[ $help =~ \\[TensorRT\\ v([0-9]+)\\] ]]; then have="${BASH_REMATCH[1]}"; else',
    '    echo "cannot read the TensorRT version from \'$TRTEXEC --help\' (expected \'[TensorRT v8502]\');" \\',
    '         "set TRTEXEC to JetPack\'s trtexec." >&2',
    "    exit 2",
    "  fi",
    '  ver="$((have / 1000)).$((have % 1000 / 100)).$((have % 100))"',
    f'  if [ "$want" != "TRT-$have-{CALIBRATOR}" ]; then',
    f'    echo "$1 starts with \'$want\' but this TensorRT is $ver (expects \'TRT-$have-{CALIBRATOR}\'):" \\',
    '         "TensorRT would ignore the cache and calibrate on random data." \\',
    '         "Re-export the bundle with --trt-version $ver." >&2',
    "    exit 2",
    "  fi",
    "}",
    "",
]


def _stem(path: str) -> str:
    return path[: -len(".engine")] if path.endswith(".engine") else path


def _quote(arg: str) -> str:
    safe = all(c.isalnum() or c in "-_=.:/,x" for c in arg)
    return arg if safe else "'" + arg.replace("'", "'\\''") + "'"
