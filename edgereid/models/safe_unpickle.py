"""Unpickle torch checkpoints with an explicit allowlist, never importing or calling user code.

Why our own: official RRID checkpoints are whole pickled modules (``torch.save(model)`` from torch
0.4.x). ``torch.load(weights_only=True)`` refuses them, and a full ``torch.load`` would import the
official repository's modules and run whatever the pickle names. Here every global a pickle names
is looked up in :data:`ALLOWED` and replaced by an inert stand-in: module classes become
:class:`InertModule` (a bag of ``_parameters`` / ``_buffers`` / ``_modules``), torch's rebuild
functions build plain CPU tensors from the file's bytes, storages on ``cuda:N`` land on the CPU.
Any other global (``os.system``, ``builtins.eval``, ``subprocess.Popen``, ...) raises
:class:`CheckpointError` naming it, before anything is called.

Two file layouts are read (see torch/serialization.py):

- zip (torch >= 1.6): ``<name>/data.pkl`` plus one ``<name>/data/<key>`` record per storage;
- legacy stream (torch 0.4 ... and ``_use_new_zipfile_serialization=False``): pickles of the
  magic number, protocol version and sys info, then the main pickle, then the list of storage
  keys, then per storage an int64 element count and the raw little-endian bytes.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from edgereid.errors import CheckpointError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# Official class names (module path, class name) that are inert module stand-ins. RRID's code
# imports ``Relation_final_ver_last_multi_scale_large_losses`` and ``resnet`` from its top-level
# directory; RGA's (``reid/models/...``) cover an RGA model saved whole with torch.save(model).
_OFFICIAL_MODULE_CLASSES = {
    "Relation_final_ver_last_multi_scale_large_losses": ("RelationModel",),
    "resnet": ("ResNet", "Bottleneck", "BasicBlock"),
    "reid.models.rga_model": ("ResNet50_RGA_Model",),
    "reid.models.models_utils.rga_branches": ("RGA_Branch", "Bottleneck"),
    "reid.models.models_utils.rga_modules": ("RGA_Module",),
}
_TORCH_NN_CLASSES = {
    "torch.nn.modules.conv": ("Conv1d", "Conv2d"),
    "torch.nn.modules.batchnorm": ("BatchNorm1d", "BatchNorm2d"),
    "torch.nn.modules.linear": ("Linear", "Identity"),
    "torch.nn.modules.activation": ("ReLU", "Sigmoid", "Softmax", "Tanh", "LeakyReLU"),
    "torch.nn.modules.pooling": ("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d"),
    "torch.nn.modules.container": ("Sequential", "ModuleList", "ModuleDict"),
    "torch.nn.modules.dropout": ("Dropout",),
    "torch.nn.parallel.data_parallel": ("DataParallel",),
    "torch.nn.parallel.distributed": ("DistributedDataParallel",),
}
_STORAGE_DTYPES = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
    "UntypedStorage": "uint8",
}  # fmt: skip
_DTYPE_NAMES = ("float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool")


class InertModule:
    """Stand-in for a pickled ``nn.Module``: keeps the pickled ``__dict__`` in ``state``, runs nothing."""

    official_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> InertModule:
        obj = object.__new__(cls)
        obj.state = {}
        return obj

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots) form
            state = state[0]
        if isinstance(state, dict):
            self.state = dict(state)

    def __repr__(self) -> str:
        return f"InertModule({self.official_name})"


class _Opaque:
    """Stand-in for harmless metadata (numpy scalars, devices, backends): keeps nothing."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Opaque:
        return object.__new__(cls)

    def __setstate__(self, state: Any) -> None:
        pass


class _StorageType:
    """Stand-in for ``torch.FloatStorage`` / ``torch.cuda.FloatStorage`` ...: only its dtype matters."""

    def __init__(self, name: str, dtype_name: str) -> None:
        self.name, self.dtype_name = name, dtype_name

    def __call__(self, *args: Any, **kwargs: Any) -> _Opaque:
        return _Opaque()

    @property
    def dtype(self):
        import torch

        return getattr(torch, self.dtype_name)


class _Storage:
    """A storage read from the file: flat uint8 bytes (filled later in the legacy layout) + dtype."""

    def __init__(self, raw, dtype) -> None:
        self.raw, self.dtype = raw, dtype


def _inert_class(module: str, name: str) -> type:
    return type(name, (InertModule,), {"official_name": f"{module}.{name}", "__module__": __name__})


def _as_strided(storage: Any, offset: Any, size: Any, stride: Any, dtype: Any = None):
    import torch

    if not isinstance(storage, _Storage):
        raise CheckpointError(f"a tensor refers to {type(storage).__name__}, not to a storage in the file.")
    dtype = storage.dtype if dtype is None else dtype
    flat = storage.raw.view(dtype) if storage.raw.numel() else torch.empty(0, dtype=dtype)
    return torch.as_strided(flat, tuple(size), tuple(stride), int(offset))


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    return _as_strided(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, hooks, dtype, *unused):
    return _as_strided(storage, storage_offset, size, stride, dtype)


def _rebuild_parameter(data, *unused):
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    return func(*args)


def _latin1_bytes(text: Any, encoding: Any = "latin1") -> bytes:
    """Protocol-2 pickles spell ``bytes`` as ``_codecs.encode(str, 'latin1')`` (numpy scalars)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise CheckpointError("refusing _codecs.encode with arguments other than (str, 'latin1').")
    return text.encode("latin1")


def _make_allowlist() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {("collections", "OrderedDict"): OrderedDict}
    for module, names in {**_OFFICIAL_MODULE_CLASSES, **_TORCH_NN_CLASSES}.items():
        for name in names:
            allowed[(module, name)] = _inert_class(module, name)
    for name, dtype_name in _STORAGE_DTYPES.items():
        for module in ("torch", "torch.cuda", "torch.storage"):
            allowed[(module, name)] = _StorageType(f"{module}.{name}", dtype_name)
    for name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
        allowed[("torch._utils", name)] = _rebuild_tensor
    allowed[("torch._utils", "_rebuild_tensor_v3")] = _rebuild_tensor_v3
    allowed[("torch._utils", "_rebuild_parameter")] = _rebuild_parameter
    allowed[("torch._utils", "_rebuild_parameter_with_state")] = _rebuild_parameter
    allowed[("torch._tensor", "_rebuild_from_type_v2")] = _rebuild_from_type_v2
    allowed[("torch.nn.parameter", "Parameter")] = _rebuild_parameter  # torch 0.4: Parameter(tensor, grad)
    for module, name in (
        ("torch.nn.backends.thnn", "_get_thnn_function_backend"),  # 0.4 modules' `_backend`
        ("torch.nn.backends.thnn", "THNNFunctionBackend"),
        ("torch", "device"),
        ("torch", "Tensor"),
        ("torch._tensor", "Tensor"),
        ("torch.nn.parameter", "UninitializedParameter"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    ):
        allowed[(module, name)] = _Opaque
    allowed[("_codecs", "encode")] = _latin1_bytes
    allowed[("builtins", "set")] = set  # modules' _non_persistent_buffers_set
    allowed[("builtins", "frozenset")] = frozenset
    allowed[("torch", "Size")] = tuple
    for name in _DTYPE_NAMES:
        allowed[("torch", name)] = _LazyDtype(name)
    return allowed


class _LazyDtype:
    """``torch.float32`` named by a pickle (``_rebuild_tensor_v3``); resolved when it is found."""

    def __init__(self, name: str) -> None:
        self.name = name


ALLOWED: dict[tuple[str, str], Any] = _make_allowlist()


class SafeUnpickler(pickle._Unpickler):
    """Pure-Python ``pickle`` unpickler whose globals come only from :data:`ALLOWED`.

    The pure-Python unpickler (not the C one) because its opcode table can be narrowed: BUILD
    (set an object's state) is allowed only on our stand-ins and OrderedDict instances, so a
    pickle cannot set attributes on the allowlisted functions and classes themselves. The pickled
    opcodes are small (tensor bytes live outside the pickle), so the speed difference is minor.

    Args:
        file: binary stream positioned at a pickle.
        load_storage: ``persistent_load`` for ``('storage', type, key, location, numel[, view])``
            ids; None refuses persistent ids (the legacy header pickles).
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file: Any, load_storage: Callable[[tuple], Any] | None = None) -> None:
        super().__init__(file, encoding="utf-8")
        self._load_storage = load_storage

    def _load_build_on_stand_ins_only(self) -> None:
        target = self.stack[-2] if len(self.stack) >= 2 else None
        # state_dict() OrderedDicts carry ``_metadata`` as instance state; instances only, not the class.
        if not isinstance(target, (InertModule, _Opaque, OrderedDict)):
            raise CheckpointError(
                f"refusing to set the state of a {type(target).__name__} (pickle BUILD): only pickled "
                "modules may carry state in a checkpoint."
            )
        pickle._Unpickler.load_build(self)

    dispatch[pickle.BUILD[0]] = _load_build_on_stand_ins_only

    def find_class(self, module: str, name: str) -> Any:
        # Protocol-2 pickles use Python 2 names (``__builtin__.set``); map them like pickle does.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = ALLOWED.get((module, name))
        if found is None:
            raise CheckpointError(
                f"refusing to load {module}.{name!s}: the checkpoint names a global outside the "
                "allowlist of official model classes, torch.nn modules and tensor storages, so it "
                "could run code. Use an official RGA/RRID checkpoint or a plain state dict."
            )
        if isinstance(found, _LazyDtype):
            import torch

            return getattr(torch, found.name)
        return found

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or not pid:
            raise CheckpointError(f"unknown persistent id {type(pid).__name__} in checkpoint.")
        kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if kind == "module" and len(pid) >= 2:  # legacy: a module class with its source text
            return pid[1]  # the class stand-in; the saved source is never looked at
        if kind == "storage" and self._load_storage is not None:
            return self._load_storage(pid[1:])
        raise CheckpointError(f"unexpected persistent id {kind!r} in checkpoint.")


def _storage_entry(data: tuple) -> tuple[Any, str, int, Any]:
    """Check a storage persistent id: (storage_type, key, location, numel[, view_metadata])."""
    if len(data) not in (4, 5) or not isinstance(data[0], _StorageType):
        raise CheckpointError(f"malformed storage reference in checkpoint: {len(data)} fields.")
    storage_type, key, _location, numel = data[:4]  # the location (e.g. 'cuda:0') is ignored: CPU
    view = data[4] if len(data) == 5 else None
    if not isinstance(numel, int) or numel < 0:
        raise CheckpointError(f"malformed storage size {numel!r} in checkpoint.")
    return storage_type, str(key), numel, view


def _view_of(storage: _Storage, view: Any) -> _Storage:
    """Legacy storage views: (view_key, offset, size) in elements of the root storage."""
    if view is None:
        return storage
    _view_key, offset, size = view
    itemsize = storage.dtype.itemsize
    return _Storage(storage.raw[offset * itemsize : (offset + size) * itemsize], storage.dtype)


def _load_zip(path: Path) -> Any:
    import numpy as np
    import torch

    try:
        archive = zipfile.ZipFile(path)
        names = archive.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise CheckpointError(f"{path}: zip archive without a single data.pkl (found {len(pkl)}).")
        prefix = pkl[0][: -len("data.pkl")]
        byteorder = prefix + "byteorder"
        if byteorder in names and archive.read(byteorder).strip() not in (b"little", b""):
            raise CheckpointError(f"{path}: big-endian checkpoints are not supported.")
        storages: dict[str, _Storage] = {}

        def load_storage(data: tuple) -> _Storage:
            storage_type, key, numel, view = _storage_entry(data)
            if key not in storages:
                record = f"{prefix}data/{key}"
                if record not in names:
                    raise CheckpointError(f"{path}: storage record {record!r} is missing.")
                blob = archive.read(record)
                raw = torch.from_numpy(np.frombuffer(blob, dtype=np.uint8).copy())
                storages[key] = _Storage(raw, storage_type.dtype)
            return _view_of(storages[key], view)

        with archive.open(pkl[0]) as stream:
            return SafeUnpickler(io.BytesIO(stream.read()), load_storage).load()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise CheckpointError(f"{path}: corrupt zip checkpoint ({exc}); re-copy or re-save it.") from exc


def _load_legacy(path: Path) -> Any:
    import torch

    # In memory: a corrupt length field then cannot make the reader allocate more than the file.
    data = path.read_bytes()
    size = len(data)
    with io.BytesIO(data) as f:
        magic = SafeUnpickler(f).load()
        if magic != LEGACY_MAGIC:
            raise CheckpointError(f"{path}: not a torch.save file (no legacy magic number, and not a zip archive).")
        protocol = SafeUnpickler(f).load()
        if protocol != LEGACY_PROTOCOL:
            raise CheckpointError(f"{path}: unknown legacy protocol version {protocol!r}.")
        sys_info = SafeUnpickler(f).load()
        if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
            raise CheckpointError(f"{path}: big-endian checkpoints are not supported.")
        storages: dict[str, _Storage] = {}

        def load_storage(data: tuple) -> _Storage:
            storage_type, key, numel, view = _storage_entry(data)
            if key not in storages:
                nbytes = numel * storage_type.dtype.itemsize
                if nbytes > size:
                    raise CheckpointError(f"{path}: storage {key} claims {nbytes} bytes, file has {size}.")
                storages[key] = _Storage(torch.empty(nbytes, dtype=torch.uint8), storage_type.dtype)
            return _view_of(storages[key], view)

        result = SafeUnpickler(f, load_storage).load()
        keys = SafeUnpickler(f).load()
        if not isinstance(keys, list):
            raise CheckpointError(f"{path}: malformed storage key list.")
        for key in keys:
            storage = storages.get(str(key))
            if storage is None:
                raise CheckpointError(f"{path}: storage {key!r} has data but no tensor uses it.")
            header = f.read(8)
            if len(header) != 8:
                raise CheckpointError(f"{path}: truncated before storage {key!r}.")
            (count,) = struct.unpack("<q", header)
            nbytes = storage.raw.numel()
            if count * storage.dtype.itemsize != nbytes:
                raise CheckpointError(f"{path}: storage {key!r} holds {count} elements, expected more/less.")
            blob = f.read(nbytes)
            if len(blob) != nbytes:
                raise CheckpointError(f"{path}: truncated inside storage {key!r}.")
            storage.raw.numpy()[:] = memoryview(blob)
    return result


def load_file(path: str | Path) -> Any:
    """Unpickle a ``torch.save`` file (zip or legacy) with the allowlist.

    Raises:
        CheckpointError: corrupt or unknown format, or a global outside :data:`ALLOWED`.
    """
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            return _load_zip(path)
        with open(path, "rb") as f:
            head = f.read(4)
        if head.startswith(b"PK"):
            raise CheckpointError(f"{path}: truncated or corrupt zip archive; re-copy or re-save it.")
        return _load_legacy(path)
    except CheckpointError:
        raise
    except Exception as exc:  # any failure while decoding untrusted bytes means a corrupt file
        raise CheckpointError(
            f"{path}: corrupt or unsupported checkpoint ({type(exc).__name__}: {exc}); expected a file "
            "written by torch.save (an official RGA/RRID checkpoint or a state dict)."
        ) from exc


__all__ = ["ALLOWED", "InertModule", "LEGACY_MAGIC", "SafeUnpickler", "load_file"]
