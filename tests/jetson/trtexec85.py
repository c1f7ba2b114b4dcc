"""A stand-in for trtexec 8.5's command-line checks, written from NVIDIA's sources (test oracle only).

Rules copied by reading NVIDIA/TensorRT release/8.5:
- samples/common/sampleOptions.cpp: the flags each *Options::parse takes (getAndDelOption), what
  their values may be (memPoolSize pools, profilingVerbosity modes, ``name:AxBxC`` shapes), and
  that any argument left over is an error; --precisionConstraints takes none|prefer|obey and
  --layerPrecisions a ``,``-separated list of ``layerName:precision`` with precision one of
  fp32|fp16|int32|int8 (getLayerPrecisions, splitNameAndValue, stringToValue<DataType>), and only
  takes effect with --precisionConstraints obey or prefer (the option's help text).
- samples/common/sampleEngines.cpp, setupNetworkAndConfig: an input is dynamic when a dimension
  is -1; shape flags with no dynamic input -> "Static model does not take explicit shapes ...";
  a dynamic input without shape flags gets every dynamic dimension overridden to 1 (a warning).
"""

from __future__ import annotations

import re
import shlex
from typing import Dict, List, Sequence

SHAPE_FLAGS = ("--shapes", "--minShapes", "--optShapes", "--maxShapes")
BOOL_FLAGS = {"--fp16", "--int8", "--allowGPUFallback", "--verbose", "--separateProfileRun", "--buildOnly",
              "--noBuilderCache", "--dumpLayerInfo", "--dumpProfile", "--best", "--noTF32"}
VALUE_FLAGS = {"--onnx", "--saveEngine", "--loadEngine", "--calib", "--useDLACore", "--memPoolSize",
               "--timingCacheFile", "--exportLayerInfo", "--exportProfile", "--exportTimes", "--exportOutput",
               "--profilingVerbosity", "--iterations", "--duration", "--warmUp", "--avgRuns", "--device",
               "--minShapesCalib", "--optShapesCalib", "--maxShapesCalib", "--precisionConstraints",
               "--layerPrecisions", *SHAPE_FLAGS}
PRECISIONS = {"fp32", "fp16", "int32", "int8"}
CONSTRAINTS = {"none", "prefer", "obey"}
MEM_POOLS = {"workspace", "dlaSRAM", "dlaLocalDRAM", "dlaGlobalDRAM"}
VERBOSITY = {"layer_names_only", "detailed", "none"}
_SHAPE = re.compile(r"^([^:]+):(\d+(?:x\d+)*)$")


class TrtexecRefused(Exception):
    """What trtexec 8.5 would print as an error before building anything."""


def parse(line: str) -> Dict[str, str]:
    """``"$TRTEXEC" --a=1 --b`` -> {"--a": "1", "--b": ""}; raises like trtexec's option parser."""
    words = shlex.split(line)
    if words[0] not in ("$TRTEXEC", "trtexec"):
        raise TrtexecRefused(f"not a trtexec line: {line!r}")
    out: Dict[str, str] = {}
    for word in words[1:]:
        name, _, value = word.partition("=")
        if name in BOOL_FLAGS:
            if value:
                raise TrtexecRefused(f"{name} takes no value")
        elif name in VALUE_FLAGS:
            if not value:
                raise TrtexecRefused(f"{name} needs a value")
        else:
            raise TrtexecRefused(f"Unknown option: {word}")
        out[name] = value
    if "--memPoolSize" in out:
        for spec in out["--memPoolSize"].split(","):
            pool, _, size = spec.partition(":")
            if pool not in MEM_POOLS or float(size) < 0:
                raise TrtexecRefused(f"Unknown memory pool: {pool}")
    if out.get("--profilingVerbosity", "detailed") not in VERBOSITY:
        raise TrtexecRefused(f"Unknown profilingVerbosity: {out['--profilingVerbosity']}")
    for flag in SHAPE_FLAGS:
        if flag in out and not _SHAPE.match(out[flag]):
            raise TrtexecRefused(f"bad shape spec {out[flag]!r}")
    if "--useDLACore" in out and not out["--useDLACore"].isdigit():
        raise TrtexecRefused("--useDLACore takes a core index")
    if out.get("--precisionConstraints", "none") not in CONSTRAINTS:
        raise TrtexecRefused(f"Invalid precisionConstraints argument: {out['--precisionConstraints']}")
    return out


def layer_precisions(args: Dict[str, str]) -> Dict[str, str]:
    """--layerPrecisions as trtexec 8.5 reads it: layer name -> precision (later entries win)."""
    out: Dict[str, str] = {}
    for item in args.get("--layerPrecisions", "").split(","):
        if not item:
            continue
        name, sep, precision = item.rpartition(":")
        if not sep or precision not in PRECISIONS:
            raise TrtexecRefused(f"Invalid layer precision {item!r}")
        out[name.replace("'", "")] = precision
    if out and args.get("--precisionConstraints", "none") == "none":
        raise TrtexecRefused("--layerPrecisions has no effect without --precisionConstraints obey|prefer")
    return out


def check_shapes(args: Dict[str, str], inputs: Dict[str, Sequence[int]]) -> List[str]:
    """Apply setupNetworkAndConfig's shape rules for ONNX inputs ``{name: dims (-1 = dynamic)}``.

    Returns trtexec's warnings; raises TrtexecRefused where trtexec returns false.
    """
    given = {flag: dict(spec.split(":", 1) for spec in args[flag].split(","))
             for flag in SHAPE_FLAGS if flag in args}
    names = {name for specs in given.values() for name in specs}
    unknown = names - set(inputs)
    if unknown:
        raise TrtexecRefused(f'Cannot find input tensor with name "{sorted(unknown)[0]}" in the network inputs!')
    dynamic = [n for n, dims in inputs.items() if any(d == -1 for d in dims)]
    if not dynamic and given:
        raise TrtexecRefused("Static model does not take explicit shapes since the shape of inference tensors "
                             "will be determined by the model itself")
    warnings = []
    for name in dynamic:
        if name not in names:
            warnings.append(f"Dynamic dimensions required for input: {name}, but no shapes were provided. "
                            "Automatically overriding shape to 1")
    return warnings


def script_lines(script: str) -> List[str]:
    """The trtexec lines of a build_engine.sh."""
    return [line.strip() for line in script.splitlines() if line.strip().startswith('"$TRTEXEC"')]
