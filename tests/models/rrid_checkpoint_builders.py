"""Build checkpoint files the way the official RRID / RGA code saved them, for the loader tests.

- :func:`save_official_module`: ``torch.save(nn.DataParallel(model))`` where every RRID module is
  an instance of a throwaway class registered under the official module path and class name
  (``Relation_final_ver_last_multi_scale_large_losses.RelationModel``, ``resnet.ResNet``,
  ``resnet.Bottleneck``), in the zip or the legacy stream format.
- :func:`write_torch041_file`: a hand-written torch 0.4.1 legacy file (pickle opcodes written by
  us): ``torch.cuda.FloatStorage`` storages located on ``cuda:0``, ``torch.nn.backends.thnn``
  backend references, 0.4-style ``Parameter(tensor, requires_grad)`` reductions, and the
  ``('module', class, file, source)`` persistent ids that 0.4 wrote for module classes.
"""

from __future__ import annotations

import contextlib
import copy
import pickle
import struct
import sys
import types
from collections import OrderedDict

import torch
from torch import nn

# Our class name -> the official (module path, class name) it stands for.
OFFICIAL_NAMES = {
    "RelationModel": ("Relation_final_ver_last_multi_scale_large_losses", "RelationModel"),
    "ResNet50Body": ("resnet", "ResNet"),
    "Bottleneck": ("resnet", "Bottleneck"),
}
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


@contextlib.contextmanager
def official_classes():
    """Throwaway nn.Module classes importable under the official names while the block runs."""
    fake_modules: dict[str, types.ModuleType] = {}
    made = {}
    for ours, (module_name, class_name) in OFFICIAL_NAMES.items():
        cls = type(class_name, (nn.Module,), {"__module__": module_name, "__qualname__": class_name})
        fake_modules.setdefault(module_name, types.ModuleType(module_name))
        setattr(fake_modules[module_name], class_name, cls)
        made[ours] = cls
    previous = {name: sys.modules.get(name) for name in fake_modules}
    sys.modules.update(fake_modules)
    try:
        yield made
    finally:
        for name, module in previous.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def save_official_module(model: nn.Module, path, legacy: bool = False) -> None:
    """``torch.save(nn.DataParallel(model))`` with the official class names, like RRID's Train.py."""
    with official_classes() as made:
        clone = copy.deepcopy(model)
        for module in clone.modules():
            replacement = made.get(type(module).__name__)
            if replacement is not None:
                module.__class__ = replacement
        torch.save(nn.DataParallel(clone), path, _use_new_zipfile_serialization=not legacy)


class Global:
    """A global written as a GLOBAL opcode by name, never imported."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle's save_reduce wants a callable
        raise AssertionError("never called")


class Call:
    """``func(*args)`` written as GLOBAL + args + REDUCE."""

    def __init__(self, func: Global, args: tuple) -> None:
        self.func, self.args = func, args


class NewObj:
    """A module written as cls + () + NEWOBJ, then its ``__dict__`` + BUILD (protocol 2)."""

    def __init__(self, cls, state: dict) -> None:
        self.cls, self.state = cls, state


class ClassRef:
    """First use of a module class in 0.4: persistent id ('module', class, source_file, source)."""

    def __init__(self, cls: Global) -> None:
        self.cls = cls


class StorageRef:
    def __init__(self, key: str, storage_type: Global, numel: int, location: str) -> None:
        self.key, self.storage_type, self.numel, self.location = key, storage_type, numel, location


class _Writer(pickle._Pickler):  # the pure-Python pickler lets us emit our own opcodes
    def persistent_id(self, obj):
        if isinstance(obj, StorageRef):
            return ("storage", obj.storage_type, obj.key, obj.location, obj.numel, None)
        if isinstance(obj, ClassRef):
            return ("module", obj.cls, f"/home/user/RRID/{obj.cls.module}.py", "class ...: pass\n")
        return None

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, Global):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        elif isinstance(obj, Call):
            self.save(obj.func)
            self.save(obj.args)
            self.write(pickle.REDUCE)
        elif isinstance(obj, NewObj):
            if id(obj) in self.memo:
                self.write(self.get(self.memo[id(obj)][0]))
                return
            self.save(obj.cls)
            self.save(())
            self.write(pickle.NEWOBJ)
            self.memoize(obj)
            self.save(obj.state)
            self.write(pickle.BUILD)
        else:
            super().save(obj, save_persistent_id)


_STORAGE_NAMES = {torch.float32: "FloatStorage", torch.int64: "LongStorage"}


def write_torch041_file(model: nn.Module, path, drop_num_batches_tracked: bool = False) -> None:
    """Write ``nn.DataParallel(model)`` as torch 0.4.1 on a GPU machine would have, opcode by opcode."""
    storages: list[tuple[StorageRef, torch.Tensor]] = []
    seen_classes: set[tuple[str, str]] = set()

    def tensor(t: torch.Tensor) -> Call:
        storage_type = Global("torch.cuda", _STORAGE_NAMES[t.dtype])
        ref = StorageRef(str(len(storages)), storage_type, t.numel(), "cuda:0")
        storages.append((ref, t.detach().contiguous()))
        rebuild = Global("torch._utils", "_rebuild_tensor_v2")
        return Call(rebuild, (ref, 0, tuple(t.shape), tuple(t.stride()), False, OrderedDict()))

    def class_of(module: nn.Module):
        module_name, class_name = OFFICIAL_NAMES.get(
            type(module).__name__, (type(module).__module__, type(module).__name__)
        )
        cls = Global(module_name, class_name)
        if (module_name, class_name) in seen_classes:
            return cls
        seen_classes.add((module_name, class_name))
        return ClassRef(cls)

    def module_obj(module: nn.Module) -> NewObj:
        params = OrderedDict(
            (name, Call(Global("torch.nn.parameter", "Parameter"), (tensor(p), True)))
            for name, p in module._parameters.items()
            if p is not None
        )
        buffers = OrderedDict(
            (name, tensor(b))
            for name, b in module._buffers.items()
            if b is not None and not (drop_num_batches_tracked and name == "num_batches_tracked")
        )
        state = {
            "_backend": Call(Global("torch.nn.backends.thnn", "_get_thnn_function_backend"), ()),
            "_parameters": params,
            "_buffers": buffers,
            "_backward_hooks": OrderedDict(),
            "_forward_hooks": OrderedDict(),
            "_forward_pre_hooks": OrderedDict(),
            "_modules": OrderedDict((name, module_obj(child)) for name, child in module._modules.items()),
            "training": False,
        }
        for key, value in vars(module).items():  # plain attributes: in_channels, stride, ...
            if not key.startswith("_") and isinstance(value, (int, float, str, tuple, type(None))):
                state.setdefault(key, value)
        return NewObj(class_of(module), state)

    wrapper_cls = ClassRef(Global("torch.nn.parallel.data_parallel", "DataParallel"))
    root = NewObj(wrapper_cls, {
        "_backend": Call(Global("torch.nn.backends.thnn", "_get_thnn_function_backend"), ()),
        "_parameters": OrderedDict(), "_buffers": OrderedDict(), "_backward_hooks": OrderedDict(),
        "_forward_hooks": OrderedDict(), "_forward_pre_hooks": OrderedDict(),
        "_modules": OrderedDict(module=module_obj(model)), "training": False,
        "dim": 0, "device_ids": [0, 1], "output_device": 0,
    })  # fmt: skip
    with open(path, "wb") as f:
        for header in (LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True,
                                            "type_sizes": {"short": 2, "int": 4, "long": 4}}):  # fmt: skip
            pickle.dump(header, f, protocol=2)
        _Writer(f, protocol=2).dump(root)
        pickle.dump([ref.key for ref, _ in storages], f, protocol=2)
        for ref, data in storages:
            f.write(struct.pack("<q", ref.numel))
            f.write(data.numpy().tobytes())
