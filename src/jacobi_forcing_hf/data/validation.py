"""Argument checks shared by the data modules: a ``ValueError`` naming the argument and what it allows."""

from __future__ import annotations

from typing import Any


def require_int(name: str, value: Any, *, minimum: int) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer (not a bool) ``>= minimum``.

    Example:
        >>> require_int("window_size", 0, minimum=1)
        Traceback (most recent call last):
        ...
        ValueError: window_size must be an integer >= 1, got 0.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
