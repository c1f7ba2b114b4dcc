"""``reid-bench check`` and ``reid-bench layers``: what to run on a Jetson / X3 right after building.

    reid-bench check --bundle DIR [--backend trt|bpu|ort|ort-int8|auto] [--out check.json]
        exit 0: every golden crop within the bundle's tolerance of FP32; 1: outside; 2: bad input.
    reid-bench layers --bundle DIR [--mode dla0] [--layers model.dla0.layers.json] [--out layers.json]
        the engine trtexec built (its --exportLayerInfo file) against the DLA report and intended precision.
"""

from __future__ import annotations

import argparse
import sys

from edgereid.cli.common import ArgumentParser


def build_check_parser() -> ArgumentParser:
    p = ArgumentParser(prog="reid-bench check", description="run a backend on the bundle's golden crops and "
                       "compare with the FP32 embeddings written at export (exit 0 pass, 1 fail)")
    p.add_argument("--bundle", required=True, help="bundle directory (with its golden role)")
    p.add_argument("--backend", default="auto", help="trt | bpu | ort | ort-int8 | torch | auto (default auto)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (onnxruntime backends only)")
    p.add_argument("--out", help="JSON report")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def build_layers_parser() -> ArgumentParser:
    p = ArgumentParser(prog="reid-bench layers", description="compare trtexec's layer file with the bundle's "
                       "DLA report and the mode's intended precision")
    p.add_argument("--bundle", required=True, help="bundle directory")
    p.add_argument("--mode", default=None, help="engine mode (default: the built one, else the bundle's default)")
    p.add_argument("--layers", default=None, help="the --exportLayerInfo file (default <engine>.layers.json "
                   "in the bundle)")
    p.add_argument("--out", help="JSON report")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def check_main(args: argparse.Namespace) -> int:
    from edgereid.benchmarks.report import check_report_path
    from edgereid.check.selfcheck import check_bundle, check_markdown, write_report

    out = check_report_path(args.out)
    report = check_bundle(args.bundle, args.backend, args.threads)
    print(check_markdown(report), end="")
    if out is not None:
        write_report(report, out)
        print(f"wrote {out}", file=sys.stderr)
    return 0 if report["pass"] else 1


def layers_main(args: argparse.Namespace) -> int:
    from edgereid.benchmarks.report import check_report_path
    from edgereid.bundle import Bundle
    from edgereid.check.selfcheck import write_report
    from edgereid.jetson.layers import compare_bundle_layers, layers_markdown

    out = check_report_path(args.out)
    report = compare_bundle_layers(Bundle.load(args.bundle), args.mode, args.layers)
    print(layers_markdown(report), end="")
    if out is not None:
        write_report(report, out)
    return 0
