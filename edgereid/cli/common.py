"""What every CLI shares: one clear message and exit status 2 for user errors, no traceback."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Sequence

from edgereid.errors import EdgeReidError

EXIT_USAGE = 2


class ArgumentParser(argparse.ArgumentParser):
    """argparse already exits with 2 on bad flags; this keeps its message on one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def run_cli(main_impl: Callable[[argparse.Namespace], int | None], parser: ArgumentParser,
            argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, call ``main_impl``; user errors -> message on stderr, exit status 2."""
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code = main_impl(args)
    except EdgeReidError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)
