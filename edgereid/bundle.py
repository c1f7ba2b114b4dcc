"""Bundles: the one artifact that joins the host half and the car half.

A bundle is a directory holding ``manifest.json`` plus the model files. Tools find files by
*role* (``files["onnx"]``), never by file name. This module is the only code that reads or
writes manifests, for both halves; it needs only the standard library and numpy.

Manifest schema (version 1), keys written by ``reid-export``::

    schema_version   int, = SCHEMA_VERSION
    arch             "rga_sc" | "rga_s" | "rga_c" | "rrid" | "onnx" (a foreign ONNX model)
    source           {"path": str, "sha256": str | None, "trained": bool}
    target           "cpu" | "xavier" | "x3"
    precision        "fp32" | "fp16" | "int8"
    inputs           [{"name", "shape", "dtype"}]   (shape entries may be strings for dynamic axes)
    outputs          [{"name", "shape", "dtype"}]
    preprocess       PreprocessSpec.to_dict()
    postprocess      {"l2_normalize": bool, "flip_average": bool}
    embedding_dim    int
    trt_version      "8.5.2" (xavier only)
    parity           {...} figures measured at export (cosine min/mean, max abs error)
    accuracy         {...} FP32 vs INT8 figures (cosine, rank-1/mAP when labelled)
    tools            {package: version}
    files            {role: relative path}

Known roles: onnx, onnx_int8_qdq, onnx_int8_cpu, calib_cache, trtexec_script, engine,
dla_report, sensitivity_report, accuracy_report, x3_onnx, x3_config, x3_calib_dir,
x3_build_script, x3_report, x3_bin, golden (reid-bench check's crops and reference embeddings).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from edgereid.errors import BundleError, InputError
from edgereid.preprocess import PreprocessSpec

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"

KNOWN_ROLES = (
    "onnx",
    "onnx_int8_qdq",
    "onnx_int8_cpu",
    "calib_cache",
    "trtexec_script",
    "engine",
    "dla_report",
    "sensitivity_report",
    "accuracy_report",
    "x3_onnx",
    "x3_config",
    "x3_calib_dir",
    "x3_build_script",
    "x3_report",
    "x3_bin",
    "golden",
)


@dataclass
class Manifest:
    """In-memory manifest; ``extra`` keeps any keys this version does not model explicitly."""

    arch: str
    target: str
    precision: str
    preprocess: PreprocessSpec
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    files: dict[str, str]
    postprocess: dict[str, bool] = field(default_factory=lambda: {"l2_normalize": True, "flip_average": False})
    source: dict[str, Any] = field(default_factory=dict)
    embedding_dim: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "schema_version": self.schema_version,
            "arch": self.arch,
            "source": self.source,
            "target": self.target,
            "precision": self.precision,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "preprocess": self.preprocess.to_dict(),
            "postprocess": self.postprocess,
            "embedding_dim": self.embedding_dim,
            "files": self.files,
        }
        for k, v in self.extra.items():
            d.setdefault(k, v)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "manifest") -> Manifest:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise BundleError(
                f"{where}: unknown manifest schema_version {version!r}; this edgereid reads version "
                f"{SCHEMA_VERSION}. Re-export the bundle with this edgereid version."
            )
        required = ("arch", "target", "precision", "preprocess", "inputs", "outputs", "files")
        missing = [k for k in required if k not in data]
        if missing:
            raise BundleError(f"{where}: manifest lacks required keys {missing}.")
        if not isinstance(data["files"], dict):
            raise BundleError(f"{where}: 'files' must map role -> relative path, got {type(data['files'])}.")
        try:
            spec = PreprocessSpec.from_dict(data["preprocess"])
        except (InputError, TypeError) as exc:
            raise BundleError(f"{where}: bad 'preprocess' entry: {exc}") from exc
        modelled = set(required) | {"schema_version", "postprocess", "source", "embedding_dim"}
        return cls(
            arch=data["arch"],
            target=data["target"],
            precision=data["precision"],
            preprocess=spec,
            inputs=list(data["inputs"]),
            outputs=list(data["outputs"]),
            files=dict(data["files"]),
            postprocess=dict(data.get("postprocess") or {"l2_normalize": True, "flip_average": False}),
            source=dict(data.get("source") or {}),
            embedding_dim=data.get("embedding_dim"),
            extra={k: v for k, v in data.items() if k not in modelled},
        )


class Bundle:
    """A bundle directory that has been read and checked.

    ``Bundle.load(path)`` checks that the manifest parses, has a known schema, and that every
    file named in ``files`` exists, so a runtime fails at start-up, not mid-run.
    """

    def __init__(self, root: Path, manifest: Manifest) -> None:
        self.root = root
        self.manifest = manifest

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Bundle:
        root = Path(path)
        if not root.is_dir():
            raise BundleError(
                f"bundle directory {str(root)!r} does not exist (expected a folder made by reid-export)."
            )
        mpath = root / MANIFEST_NAME
        if not mpath.is_file():
            raise BundleError(f"{str(root)!r} is not a bundle: it has no {MANIFEST_NAME}.")
        try:
            data = json.loads(mpath.read_text())
        except (OSError, ValueError) as exc:
            raise BundleError(f"{mpath}: cannot read manifest JSON ({exc}).") from exc
        if not isinstance(data, dict):
            raise BundleError(f"{mpath}: manifest must be a JSON object.")
        manifest = Manifest.from_dict(data, where=str(mpath))
        for role, rel in manifest.files.items():
            if not (root / rel).exists():
                raise BundleError(
                    f"bundle {str(root)!r}: file for role {role!r} ({rel!r}) is missing. "
                    "Copy the whole bundle directory or re-export it."
                )
        return cls(root, manifest)

    @property
    def preprocess(self) -> PreprocessSpec:
        return self.manifest.preprocess

    def has(self, role: str) -> bool:
        return role in self.manifest.files

    def path(self, role: str) -> Path:
        """Absolute path of the file with ``role``; a clear error when the bundle lacks it."""
        if role not in self.manifest.files:
            raise BundleError(
                f"bundle {str(self.root)!r} has no file with role {role!r}; it has "
                f"{sorted(self.manifest.files)}. Re-export with the option that produces it."
            )
        return self.root / self.manifest.files[role]

    def __repr__(self) -> str:
        m = self.manifest
        return f"Bundle({str(self.root)!r}, arch={m.arch}, target={m.target}, precision={m.precision})"


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(directory: str | os.PathLike[str], manifest: Manifest) -> Path:
    """Write ``manifest.json`` atomically (temp file + os.replace)."""
    path = Path(directory) / MANIFEST_NAME
    atomic_write_text(path, json_text(manifest.to_dict()))
    return path


def json_text(obj: object, indent: int | None = 2, nan_as_null: bool = False, **kwargs) -> str:
    """Strict JSON text (newline-terminated). ``NaN`` is not JSON (other tools refuse such a
    file), so NaN/Inf raise ValueError, or become null with ``nan_as_null`` (reports)."""
    if nan_as_null:
        obj = _nan_to_none(obj)
    return json.dumps(obj, indent=indent, allow_nan=False, **kwargs) + "\n"


def _nan_to_none(obj: object) -> object:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write a file so readers never see half of it (temp file in the same dir, then rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def check_output_dir(out: str | os.PathLike[str], force: bool = False) -> Path:
    """Refuse an existing non-empty ``out`` unless ``force``; refuse an unwritable parent."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} exists and is not a directory.")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InputError(f"--out {str(out)!r} exists and is not empty; choose another path or pass --force.")
    parent = out.parent if str(out.parent) else Path(".")
    parent = parent.resolve()
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        raise InputError(f"--out {str(out)!r}: directory {str(probe)!r} is not writable.")
    return out


class staging_dir:  # noqa: N801 - used like a function: `with staging_dir(out) as tmp:`
    """Build a bundle in a temporary sibling directory and rename it into place on success.

    A failed export leaves nothing at ``out`` (and removes its temporary directory).
    """

    def __init__(self, out: str | os.PathLike[str], force: bool = False) -> None:
        self.out = Path(out)
        self.force = force
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        check_output_dir(self.out, self.force)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(dir=self.out.parent, prefix=f".{self.out.name}.partial-"))
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.tmp is not None
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        if self.out.exists():
            old = self.out.with_name(f".{self.out.name}.old-{os.getpid()}")
            os.replace(self.out, old)
            os.replace(self.tmp, self.out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.tmp, self.out)


def iter_roles(bundle: Bundle) -> Iterator[tuple[str, Path]]:
    for role in bundle.manifest.files:
        yield role, bundle.path(role)
