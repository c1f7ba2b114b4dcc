"""Thin argparse entry points: reid-export, reid-follow, reid-bench, reid-eval."""

from __future__ import annotations
