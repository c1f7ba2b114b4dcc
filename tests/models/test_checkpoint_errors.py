"""Every bad checkpoint gives one clear CheckpointError; a malicious pickle runs nothing."""

from __future__ import annotations

import io
import os
import pickle
import random
import struct
import zipfile

import pytest
import torch

from edgereid.errors import CheckpointError
from edgereid.models import load_model
from edgereid.models.checkpoint import guess_arch, load_official_weights, read_checkpoint
from edgereid.models.rrid import build_rrid


@pytest.fixture(scope="module")
def rrid():
    torch.manual_seed(0)
    return build_rrid()


@pytest.fixture(scope="module")
def rrid_state(rrid):
    return {k: v.clone() for k, v in rrid.state_dict().items()}


@pytest.fixture()
def small_zip(tmp_path):
    path = tmp_path / "small.pth"
    torch.save({"w": torch.arange(1000, dtype=torch.float32)}, path)
    return path


# ---- missing and corrupt files -------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"does not exist.*official"):
        read_checkpoint(tmp_path / "nope.pth")
    with pytest.raises(CheckpointError, match="not a file"):
        read_checkpoint(tmp_path)


def test_random_bytes_and_empty_file(tmp_path):
    noise = tmp_path / "noise.pth"
    noise.write_bytes(random.Random(0).randbytes(4096))
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    for path in (noise, empty):
        with pytest.raises(CheckpointError, match=r"corrupt|not a torch.save file|refusing"):
            read_checkpoint(path)


def test_truncated_zip(small_zip, tmp_path):
    data = small_zip.read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt zip"):
        read_checkpoint(cut)


def test_zip_with_a_damaged_record(small_zip, tmp_path):
    data = bytearray(small_zip.read_bytes())
    info = next(i for i in zipfile.ZipFile(small_zip).infolist() if i.filename.endswith("/data/0"))
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)  # local header
    start = info.header_offset + 30 + name_len + extra_len
    data[start : start + 16] = b"\xff" * 16  # CRC no longer matches
    bad = tmp_path / "bad_crc.pth"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt zip"):
        read_checkpoint(bad)


def test_truncated_legacy_stream(tmp_path):
    path = tmp_path / "legacy.pth"
    torch.save({"w": torch.ones(5000)}, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    path.write_bytes(data[:-100])
    with pytest.raises(CheckpointError, match="truncated inside storage"):
        read_checkpoint(path)


def test_plain_pickle_without_torch_header(tmp_path):
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"w": [1, 2, 3]}, protocol=2))
    with pytest.raises(CheckpointError, match="not a torch.save file"):
        read_checkpoint(path)


def test_file_without_tensors(tmp_path):
    path = tmp_path / "meta.pth"
    torch.save({"epoch": 3, "arch": "resnet"}, path)
    with pytest.raises(CheckpointError, match=r"no tensors"):
        read_checkpoint(path)


# ---- keys that do not fit ------------------------------------------------------------------


def test_wrong_architecture_is_named(tmp_path):
    path = tmp_path / "rrid_like.pth"
    rrid_keys = ("module.local_6_conv_list.0.0.weight", "module.base.conv1.weight")
    torch.save({key: torch.zeros(1) for key in rrid_keys}, path)
    with pytest.raises(CheckpointError, match=r"rrid_like.pth.*looks like an rrid checkpoint.*'rga_sc'"):
        load_model("rga_sc", path)


def test_rga_checkpoint_given_to_rrid_is_named(rrid):
    rga_keys = ("backbone.rga_att1.gx_spatial.0.weight", "backbone.rga_att1.gx_channel.0.weight")
    state = {key: torch.zeros(1) for key in rga_keys}
    assert guess_arch(state) == "rga_sc"
    with pytest.raises(CheckpointError, match="looks like an rga_sc checkpoint"):
        load_official_weights(rrid, state, arch="rrid")


def test_missing_keys_are_listed(rrid, rrid_state):
    state = {k: v for k, v in rrid_state.items() if not k.startswith("relation_2_conv_list.1.")}
    with pytest.raises(CheckpointError, match=r"6 missing key\(s\): relation_2_conv_list\.1\.0\.bias"):
        load_official_weights(rrid, state, arch="rrid")


def test_unexpected_keys_are_listed(rrid, rrid_state):
    state = {**rrid_state, "module.extra_head.weight": torch.zeros(3)}
    with pytest.raises(CheckpointError, match=r"1 unexpected key\(s\): extra_head\.weight"):
        load_official_weights(rrid, state, arch="rrid")


def test_shape_mismatch_is_listed(rrid, rrid_state):
    state = {**rrid_state, "local_6_conv_list.0.0.weight": torch.zeros(128, 2048, 1, 1)}
    expected = r"local_6_conv_list\.0\.0\.weight \(checkpoint \(128, 2048, 1, 1\), model \(256"
    with pytest.raises(CheckpointError, match=expected):
        load_official_weights(rrid, state, arch="rrid")


def test_unrelated_state_dict(rrid):
    with pytest.raises(CheckpointError, match="none of the rrid keys were found"):
        load_official_weights(rrid, {"fc.weight": torch.zeros(2)}, arch="rrid")


def test_failed_load_leaves_the_model_untouched(rrid, rrid_state):
    state = {k: torch.zeros_like(v) for k, v in rrid_state.items()}
    state["unexpected.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError):
        load_official_weights(rrid, state, arch="rrid")
    assert torch.equal(rrid.base.conv1.weight, rrid_state["base.conv1.weight"])


# ---- malicious pickles -----------------------------------------------------------------------


def _payload(module: str, name: str, arg: str) -> bytes:
    """Protocol-0 opcodes for ``module.name(arg)`` wrapped in a dict entry, as an attacker writes them."""
    return f"(dp0\nS'state_dict'\np1\nc{module}\n{name}\n(S'{arg}'\ntR.".encode()


def _legacy_file(path, main_pickle: bytes) -> None:
    header = b"".join(pickle.dumps(h, protocol=2) for h in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    path.write_bytes(header + main_pickle + pickle.dumps([], protocol=2))


def _zip_file(path, main_pickle: bytes) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", main_pickle)
        archive.writestr("archive/version", "3\n")


ATTACKS = [
    ("os", "system", "touch {marker}", "os.system"),
    ("posix", "system", "touch {marker}", "posix.system"),
    ("builtins", "eval", "open('{marker}', 'w').close()", "builtins.eval"),
    ("builtins", "exec", "open('{marker}', 'w').close()", "builtins.exec"),
    ("subprocess", "check_call", "touch {marker}", "subprocess.check_call"),
]


def test_payload_is_really_malicious(tmp_path):
    """Control: an unrestricted unpickler runs the payload (so the refusals below mean something)."""
    marker = tmp_path / "ran"
    pickle.loads(_payload("os", "system", f"touch {marker}"))
    assert marker.exists()


@pytest.mark.parametrize("container", ["legacy", "zip"])
@pytest.mark.parametrize(("module", "name", "arg", "named"), ATTACKS)
def test_malicious_pickle_is_refused_and_nothing_runs(container, module, name, arg, named, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    payload = _payload(module, name, arg.format(marker=marker))
    (_legacy_file if container == "legacy" else _zip_file)(path, payload)
    with pytest.raises(CheckpointError, match=rf"refusing to load {named}\b"):
        read_checkpoint(path)
    assert not marker.exists()


def test_load_model_refuses_a_malicious_checkpoint(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    _legacy_file(path, _payload("os", "system", f"touch {marker}"))
    with pytest.raises(CheckpointError, match=r"refusing to load os\.system.*allowlist"):
        load_model("rrid", path)
    assert not marker.exists()


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_object_with_reduce_inside_a_real_torch_save_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth.tar"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": _Evil(str(marker))}, path)
    with pytest.raises(CheckpointError, match=r"refusing to load (posix|os|nt)\.system"):
        read_checkpoint(path)
    assert not marker.exists()


def test_allowed_class_under_an_unknown_module_is_refused(tmp_path):
    """The allowlist is by (module, name): a look-alike module path is refused."""
    path = tmp_path / "lookalike.pth"
    buffer = io.BytesIO(b"cevil_models\nRelationModel\n)\x81.")
    _legacy_file(path, buffer.getvalue())
    with pytest.raises(CheckpointError, match=r"refusing to load evil_models\.RelationModel"):
        read_checkpoint(path)


def test_pickle_cannot_set_attributes_on_allowlisted_globals(tmp_path):
    """BUILD on an allowlisted class (to plant attributes for later loads) is refused."""
    path = tmp_path / "mutate.pth"
    _legacy_file(path, b"ccollections\nOrderedDict\n(dS'x'\nI1\nsb.")
    with pytest.raises(CheckpointError, match=r"refusing to set the state of a type"):
        read_checkpoint(path)


def test_cyclic_module_tree_is_refused(tmp_path):
    """A module whose _modules contains itself (memo reference) ends in a clear error, not a hang."""
    main = (
        b"\x80\x02ctorch.nn.modules.container\nSequential\nq\x00)\x81q\x01}q\x02X\x08\x00\x00\x00_modules"
        b"q\x03ccollections\nOrderedDict\n)Rq\x04X\x01\x00\x00\x000h\x01ssb."
    )
    path = tmp_path / "cycle.pth"
    _legacy_file(path, main)
    with pytest.raises(CheckpointError, match="deeper than 64 levels"):
        read_checkpoint(path)
