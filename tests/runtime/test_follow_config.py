"""FollowConfig: defaults file == dataclass defaults, INI overrides, clear errors."""

from __future__ import annotations

import configparser

import pytest

from edgereid.errors import InputError
from edgereid.runtime.config import DEFAULTS_FILE, FollowConfig, load_config


def test_defaults_file_documents_exactly_the_dataclass_defaults():
    parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
    parser.read(DEFAULTS_FILE)
    from_file = {s: dict(parser[s]) for s in parser.sections()}
    defaults = FollowConfig().to_dict()
    assert sorted(from_file) == sorted(defaults)
    for section, values in defaults.items():
        assert sorted(from_file[section]) == sorted(values), section
    assert load_config(DEFAULTS_FILE) == FollowConfig()


def test_partial_ini_overrides_only_its_keys(tmp_path):
    path = tmp_path / "car.ini"
    path.write_text("[lock]\naccept_frames = 5\n[command]\nmax_speed = 0.4  # slow car\nallow_reverse = yes\n")
    cfg = load_config(path)
    assert cfg.lock.accept_frames == 5
    assert cfg.command.max_speed == 0.4
    assert cfg.command.allow_reverse is True
    assert cfg.lock.accept_threshold == FollowConfig().lock.accept_threshold


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[lock]\nacept_frames = 5\n", "unknown key 'acept_frames'"),
        ("[locks]\naccept_frames = 5\n", "unknown section [locks]"),
        ("[lock]\naccept_frames = many\n", "expected a int"),
        ("[lock]\nreject_threshold = 0.9\n", "reject_threshold must be <= lock.accept_threshold"),
        ("[command]\nsmoothing = 1.0\n", "smoothing must be in [0, 1)"),
        ("no section header\n", "not a valid INI"),
    ],
)
def test_bad_config_raises_input_error_naming_the_problem(tmp_path, text, fragment):
    path = tmp_path / "bad.ini"
    path.write_text(text)
    with pytest.raises(InputError, match=None) as info:
        load_config(path)
    assert fragment in str(info.value)


def test_missing_config_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_config(tmp_path / "nope.ini")
