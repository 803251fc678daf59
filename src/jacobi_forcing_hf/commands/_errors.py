"""How the data commands (``collect``, ``pack``) report bad input: one line on stderr and exit status 2."""

from __future__ import annotations

import sys

EXIT_BAD_INPUT = 2


def report_bad_input(command: str, error: Exception) -> int:
    """Print ``error`` as ``jacobi-forcing <command>: <error>`` on stderr and return the exit status of bad input.

    Example:
        >>> report_bad_input("pack", ValueError("no trajectories in 'out'"))
        2
    """
    print(f"jacobi-forcing {command}: {error}", file=sys.stderr)
    return EXIT_BAD_INPUT
