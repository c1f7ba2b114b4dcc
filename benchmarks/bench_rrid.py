"""RRID CPU latency (raw vs flip-averaged feature) and checkpoint read time, measured in one run.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_rrid.py --rounds 5

Latency rows interleave the two variants round by round so that machine load affects both alike.
The read rows time ``read_checkpoint`` on a full RRID state (41.4 M values) saved as a plain
state dict in the zip and the legacy format.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def _median_ms(samples: list[float]) -> float:
    return 1000 * statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()

    import torch

    from edgereid.models.checkpoint import read_checkpoint
    from edgereid.models.rrid import build_rrid

    torch.manual_seed(0)
    raw, flip = build_rrid(), build_rrid(flip_average=True)
    flip.load_state_dict(raw.state_dict())
    x = torch.randn(args.batch, 3, 384, 128)
    times: dict[str, list[float]] = {"raw": [], "flip_average": []}
    with torch.no_grad():
        raw(x), flip(x)  # warm-up
        for _ in range(args.rounds):
            for name, model in (("raw", raw), ("flip_average", flip)):
                start = time.perf_counter()
                model(x)
                times[name].append(time.perf_counter() - start)
    print("| variant | batch | median ms | ms per crop |\n|---|---|---|---|")
    for name, samples in times.items():
        ms = _median_ms(samples)
        print(f"| rrid {name} | {args.batch} | {ms:.0f} | {ms / args.batch:.0f} |")

    with tempfile.TemporaryDirectory() as folder:
        reads: dict[str, list[float]] = {}
        for legacy in (False, True):
            path = Path(folder) / f"rrid_{legacy}.pth"
            torch.save(raw.state_dict(), path, _use_new_zipfile_serialization=not legacy)
            name = "legacy stream" if legacy else "zip"
            reads[name] = []
            for _ in range(3):
                start = time.perf_counter()
                read_checkpoint(path)
                reads[name].append(time.perf_counter() - start)
    print("\n| read_checkpoint (RRID, 165 MB) | median ms |\n|---|---|")
    for name, samples in reads.items():
        print(f"| {name} | {_median_ms(samples):.0f} |")


if __name__ == "__main__":
    main()
