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
        # None = derived from the bundle's similarity scale: documented as a commented line
        assert sorted(from_file[section]) == sorted(k for k, v in values.items() if v is not None), section
        text = DEFAULTS_FILE.read_text()
        for key in (k for k, v in values.items() if v is None):
            assert f"# {key} = " in text, key
    assert load_config(DEFAULTS_FILE) == FollowConfig()


def test_partial_ini_overrides_only_its_keys(tmp_path):
    path = tmp_path / "car.ini"
    path.write_text("[lock]\naccept_frames = 5\n[command]\nmax_speed = 0.4  # slow car\nallow_reverse = yes\n")
    cfg = load_config(path)
    assert cfg.lock.accept_frames == 5
    assert cfg.command.max_speed == 0.4
    assert cfg.command.allow_reverse is True
    assert cfg.lock.accept_threshold is None  # still derived from the bundle
    pinned = tmp_path / "pinned.ini"
    pinned.write_text("[lock]\naccept_threshold = 0.8\n[gallery]\nupdate_threshold = 0.7\n")
    cfg = load_config(pinned)
    assert (cfg.lock.accept_threshold, cfg.gallery.update_threshold) == (0.8, 0.7)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[lock]\nacept_frames = 5\n", "unknown key 'acept_frames'"),
        ("[locks]\naccept_frames = 5\n", "unknown section [locks]"),
        ("[lock]\naccept_frames = many\n", "expected a int"),
        ("[lock]\nreject_threshold = 0.9\naccept_threshold = 0.8\n",
         "reject_threshold must be <= lock.accept_threshold"),
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
