"""Self-check of a bundle on the device: golden crops written at export, judged by ``reid-bench check``."""

from __future__ import annotations

from edgereid.check.golden import Golden, add_golden, read_golden
from edgereid.check.selfcheck import check_bundle, check_markdown

__all__ = ["Golden", "add_golden", "check_bundle", "check_markdown", "read_golden"]
