from __future__ import annotations

import pytest

from edgereid.errors import InputError
from edgereid.export import resolve_profile
from edgereid.export.targets import check_target
from edgereid.jetson.plan import BatchProfile


@pytest.mark.parametrize(
    "target, batch, dynamic, dla, expected",
    [
        ("xavier", None, None, False, BatchProfile(1, 4, 8)),
        ("cpu", 3, None, False, BatchProfile(3, 3, 3)),
        ("xavier", None, "2:4:16", False, BatchProfile(2, 4, 16)),
        ("xavier", None, None, True, BatchProfile(1, 1, 1)),
        ("xavier", 2, None, True, BatchProfile(2, 2, 2)),
        ("x3", None, None, False, BatchProfile(1, 1, 1)),
    ],
)
def test_resolve_profile(target, batch, dynamic, dla, expected):
    assert resolve_profile(target, batch, dynamic, dla) == expected


@pytest.mark.parametrize(
    "target, batch, dynamic, dla, message",
    [
        ("xavier", 2, "1:2:4", False, "not both"),
        ("xavier", None, "1:4:8", True, "--dla needs a static batch"),
        ("x3", None, "1:2:4", False, "batch 1 only"),
        ("cpu", 0, None, False, "at least 1"),
    ],
)
def test_resolve_profile_errors(target, batch, dynamic, dla, message):
    with pytest.raises(InputError, match=message):
        resolve_profile(target, batch, dynamic, dla)


def test_check_target_defaults_and_errors():
    assert check_target("xavier", None) == "fp16"
    assert check_target("cpu", None) == "fp32"
    assert check_target("cpu", "int8") == "int8"
    with pytest.raises(InputError, match="builds"):
        check_target("cpu", "fp16")
    with pytest.raises(InputError, match="valid"):
        check_target("orin", None)
