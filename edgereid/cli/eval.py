"""reid-eval: rank-1/5/10 and mAP of a bundle's backends on a ReID test set (Market-1501 protocol).

    reid-eval --bundle DIR --data DIR [--format auto|market1501|cuhk03|folders]
              [--backend ort,ort-int8] [--out report.json]
    reid-eval --bundle DIR --data DIR --similarity     store the similarity scale the follow lock uses
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from edgereid.cli.common import ArgumentParser, run_cli


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="reid-eval", description=__doc__.split("\n")[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", required=True, help="bundle directory made by reid-export")
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--format", default="auto", choices=["auto", "market1501", "cuhk03", "folders"],
                   help="dataset layout (default: detect)")
    p.add_argument("--backend", default="ort",
                   help="comma-separated backends, e.g. ort,ort-int8,trt,bpu (default: ort); the reference "
                        "(--reference) is evaluated too, for the loss column")
    p.add_argument("--reference", default="ort",
                   help="backend the loss is measured against (default ort = FP32 ONNX); 'none' skips it")
    p.add_argument("--similarity", action="store_true",
                   help="instead of rank-1/mAP: measure the embedder's genuine/impostor similarity scale on "
                        "--data (identities it was not trained on) and store it in the bundle's manifest, "
                        "where reid-follow derives its lock thresholds from it")
    p.add_argument("--out", help="write the JSON report here")
    p.add_argument("--query-cam", type=int, default=None, help="folders format: query camera (default 1)")
    p.add_argument("--gallery-cam", type=int, default=None, help="folders format: gallery camera (default 2)")
    p.add_argument("--cuhk03-variant", default=None, choices=["labeled", "detected"],
                   help="cuhk03 format: which boxes (default labeled)")
    p.add_argument("--batch-size", type=int, default=32, help="crops per inference call (default 32)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads per backend")
    p.add_argument("--cache-dir", default=None,
                   help="embedding cache (default $EDGEREID_CACHE_DIR or ~/.cache/edgereid/embeddings)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write cached embeddings")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _main(args: argparse.Namespace) -> int:
    from edgereid.benchmarks.report import check_report_path, write_json
    from edgereid.evaluation.reid_eval import evaluate_bundle, format_table

    out = check_report_path(args.out)
    if args.similarity:
        return _similarity_main(args, out)
    report = evaluate_bundle(
        args.bundle,
        args.data,
        backends=args.backend.split(","),
        fmt=args.format,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        batch_size=args.batch_size,
        threads=args.threads,
        progress=not args.no_progress,
        split_options={"query_cam": args.query_cam, "gallery_cam": args.gallery_cam, "variant": args.cuhk03_variant},
        reference=None if args.reference.lower() == "none" else args.reference,
    )
    print(format_table(report))
    if out is not None:
        write_json(out, report)
    return 0


def _similarity_main(args: argparse.Namespace, out) -> int:
    import json

    from edgereid.benchmarks.report import write_json
    from edgereid.evaluation.similarity import add_similarity_scale

    block = add_similarity_scale(args.bundle, args.data, args.format, backend=args.backend.split(",")[0],
                                 split_options={"query_cam": args.query_cam, "gallery_cam": args.gallery_cam,
                                                "variant": args.cuhk03_variant})
    print(json.dumps(block, indent=1))
    print(f"wrote the similarity scale into {args.bundle}/manifest.json", file=sys.stderr)
    if out is not None:
        write_json(out, block)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
