"""Progress bars through tqdm when it is installed, and silent stand-ins when it is not.

tqdm is optional (the car may lack it), so a missing tqdm or ``enabled=False`` gives a bar whose
``update``/``close`` do nothing, and callers never branch on it.
"""

from __future__ import annotations

from typing import Any, Iterable


class NoBar:
    """A progress bar that shows nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, desc: str, enabled: bool = True, unit: str = "it", tty_only: bool = False) -> Any:
    """A bar counting to ``total``: tqdm's, or :class:`NoBar`.

    Args:
        total: number of steps.
        desc: label shown before the bar.
        enabled: False = always silent (``--no-progress``).
        unit: what one step is ("crop", "call", ...).
        tty_only: show it only when stderr is a terminal (tqdm's ``disable=None``), so logs of
            batch jobs stay clean.
    """
    if not enabled:
        return NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return NoBar()
    return tqdm(total=total, desc=desc, unit=unit, leave=False, disable=None if tty_only else False)


def progress_iter(items: Iterable[Any], desc: str) -> Iterable[Any]:
    """``items`` with a bar on a terminal (tqdm), or ``items`` unchanged without tqdm."""
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, leave=False, disable=None)
