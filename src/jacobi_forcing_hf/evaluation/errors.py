"""The error raised for bad evaluation input, before any generation starts."""

from __future__ import annotations


class EvaluationInputError(ValueError):
    """Bad input to an evaluation, benchmark or sweep: an unknown task or method, a dataset without the
    expected columns, a model path that does not exist, a knob outside its range, or a results file made with
    other arguments. The message names the argument and what is allowed."""
