"""One exception family for edgereid.

Every error a user can cause (a bad checkpoint, a missing file, an unknown option) is raised as a
subclass of :class:`EdgeReidError` with a message that says what was expected, what was received
and how to fix it. The CLIs catch exactly this family, print the message and exit with status 2,
so users never see a traceback for their own mistakes.
"""

from __future__ import annotations


class EdgeReidError(Exception):
    """Base class of every user-facing edgereid error."""


class CheckpointError(EdgeReidError):
    """A checkpoint is missing, corrupt, unsafe, or does not fit the architecture."""


class BundleError(EdgeReidError):
    """A bundle directory or its manifest is missing, incomplete, or of an unknown schema."""


class InputError(EdgeReidError):
    """A user input (file, directory, option value) is unusable."""


class MissingDependencyError(EdgeReidError):
    """An optional package needed for this path is not installed on this machine."""


class BackendError(EdgeReidError):
    """An inference backend failed to load or run."""
