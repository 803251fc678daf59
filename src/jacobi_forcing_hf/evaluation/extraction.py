"""Answer extraction: code from markdown fences, numbers from GSM8K solutions, ``\\boxed{...}`` answers from
MATH.

Every function here is pure text processing, so the scoring rules can be read and tested without a model.

Example:
    >>> extract_code("Here you go:\\n```python\\ndef f():\\n    return 1\\n```\\nDone.")
    'def f():\\n    return 1'
    >>> extract_gsm8k_answer("She pays 3 * 1,250 = 3,750 dollars.\\n#### 3,750")
    '3750'
    >>> last_boxed_content("so the answer is $\\\\boxed{\\\\frac{1}{2}}$.")
    '\\\\frac{1}{2}'
    >>> math_answers_equal("\\\\dfrac{1}{2}", "0.5")
    True
"""

from __future__ import annotations

import re
from fractions import Fraction

# An opening fence with an optional language tag; the code runs to the closing fence (or the end of the text
# when
# generation stopped inside the block).
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PYTHON_TAGS = ("python", "py", "python3", "")

# A number as people write it: optional sign, thousands separators in groups of exactly three digits,
# decimals.
_NUMBER = re.compile(r"(?<![\w.])[-−]?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?")


def extract_code(text: str) -> str:
    """The first Python (or untagged) fenced code block of ``text``; the whole text when there is no fence.

    An unclosed fence (generation cut by the token limit) yields everything after it.
    """
    for match in _FENCE.finditer(text):
        if match.group(1).lower() in _PYTHON_TAGS:
            return match.group(2).rstrip()
    return text.strip("\n")


def truncate_at_stop_sequences(text: str, stop_sequences: tuple[str, ...]) -> str:
    """``text`` cut before the earliest of ``stop_sequences`` (unchanged when none occurs)."""
    positions = [text.find(stop) for stop in stop_sequences if stop in text]
    return text[: min(positions)] if positions else text


# ---------------------------------------------------------------------------------------------------- numbers


def normalize_number(text: str) -> str | None:
    """A canonical string for a number written with ``$``, thousands separators, a unicode minus or a
    fraction.

    Returns ``None`` when ``text`` holds no number. Integers lose a trailing ``.0``; fractions stay ``a/b``.

    >>> normalize_number("-$1,234.50")
    '-1234.5'
    >>> normalize_number("12.0")
    '12'
    """
    match = _NUMBER.search(text)
    if match is None:
        return None
    raw = match.group(0).replace("−", "-").replace("$", "").replace(",", "").replace(" ", "")
    value = _to_fraction(raw)
    if value is None:
        return None
    return _format_fraction(value)


def _to_fraction(raw: str) -> Fraction | None:
    try:
        return Fraction(raw)
    except (ValueError, ZeroDivisionError):
        return None


def _format_fraction(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    decimal = float(value)
    if Fraction(repr(decimal)) == value:  # a terminating decimal such as 1234.5
        return repr(decimal)
    return f"{value.numerator}/{value.denominator}"


def gsm8k_reference_answer(solution: str) -> str:
    """The number after ``####`` of a GSM8K reference solution, normalised.

    Raises:
        ValueError: the solution has no ``####`` line or no number after it.
    """
    if "####" not in solution:
        raise ValueError(f"GSM8K reference solution without a '####' answer line: {solution[-80:]!r}")
    answer = normalize_number(solution.rsplit("####", 1)[1])
    if answer is None:
        raise ValueError(f"GSM8K reference answer is not a number: {solution.rsplit('####', 1)[1]!r}")
    return answer


def extract_gsm8k_answer(text: str) -> str | None:
    """The final numeric answer of a model's GSM8K solution, normalised, or ``None``.

    Looked for in this order: the number after the last ``####``; the content of the last ``\\boxed{}``; the
    first number after the last "answer is"; the last number of the text.
    """
    if "####" in text:
        found = normalize_number(text.rsplit("####", 1)[1])
        if found is not None:
            return found
    boxed = last_boxed_content(text)
    if boxed is not None:
        found = normalize_number(boxed)
        if found is not None:
            return found
    lowered = text.lower()
    if "answer is" in lowered:
        found = normalize_number(text[lowered.rindex("answer is") + len("answer is") :])
        if found is not None:
            return found
    numbers = list(_NUMBER.finditer(text))
    return normalize_number(numbers[-1].group(0)) if numbers else None


# ------------------------------------------------------------------------------------------------------- MATH


def last_boxed_content(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``, nested braces included.

    ``\\boxed 5`` (no braces) gives ``"5"``. Returns ``None`` when there is no complete boxed answer.
    """
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    rest = text[start:].removeprefix("\\boxed").removeprefix("\\fbox")
    if rest.startswith(" "):
        return re.split(r"[\s$]", rest.strip(), maxsplit=1)[0] or None
    if not rest.startswith("{"):
        return None
    depth = 0
    for index, char in enumerate(rest):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return rest[1:index]
    return None


_TEXT_COMMAND = re.compile(r"\\(?:text|textbf|mbox|mathrm)\{([^{}]*)\}")
_FRAC_SHORTHAND = re.compile(r"\\frac(\d)(\d)")
_FRAC_HALF_BRACED = re.compile(r"\\frac\{([^{}]*)\}(\d)")
_SQRT_SHORTHAND = re.compile(r"\\sqrt(\w)")
_SIMPLE_SLASH = re.compile(r"^(-?\d+)/(\d+)$")
_LATEX_FRACTION = re.compile(r"^(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}$")
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")


def normalize_math_answer(answer: str) -> str:
    """A canonical form of a MATH answer so that equal answers written differently compare equal.

    Removes spacing and sizing commands (``\\left``, ``\\!``, spaces), dollar signs, degree marks and percent
    signs, unwraps ``\\text{}``, turns ``\\dfrac``/``\\tfrac`` into ``\\frac``, completes the braces of
    ``\\frac12`` and ``\\sqrt2``, writes ``a/b`` as ``\\frac{a}{b}``, drops a short ``x =`` prefix, thousands
    separators and a trailing period, and adds the leading zero of ``.5``.

    >>> normalize_math_answer("\\\\left( \\\\dfrac12, 3 \\\\right)")
    '(\\\\frac{1}{2},3)'
    >>> normalize_math_answer("x = 10,\\\\!000")
    '10000'
    """
    text = answer.strip().replace("\n", "")
    text = _TEXT_COMMAND.sub(r"\1", text)
    for old, new in (
        ("\\!", ""),
        ("\\,", ""),
        ("\\;", ""),
        ("\\left", ""),
        ("\\right", ""),
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("\\$", ""),
        ("$", ""),
        ("\\%", ""),
        ("%", ""),
    ):
        text = text.replace(old, new)
    text = text.replace(" ", "").rstrip(".")
    if "=" in text and len(text.split("=")[0]) <= 2:
        text = text.split("=", 1)[1]
    if _THOUSANDS.match(text):
        text = text.replace(",", "")
    text = _FRAC_SHORTHAND.sub(r"\\frac{\1}{\2}", text)
    text = _FRAC_HALF_BRACED.sub(r"\\frac{\1}{\2}", text)
    text = _SQRT_SHORTHAND.sub(r"\\sqrt{\1}", text)
    text = _SIMPLE_SLASH.sub(r"\\frac{\1}{\2}", text)
    if text.startswith("."):
        text = "0" + text
    text = text.replace("{.", "{0.").replace("-.", "-0.")
    return text


def _math_value(normalized: str) -> Fraction | None:
    """The exact value of a normalised answer that is a plain number or a numeric ``\\frac``, else
    ``None``."""
    fraction = _LATEX_FRACTION.match(normalized)
    if fraction:
        sign, numerator, denominator = fraction.groups()
        value = _to_fraction(f"{numerator}/{denominator}")
        return -value if value is not None and sign else value
    if re.fullmatch(r"-?\d+(?:\.\d+)?", normalized):
        return _to_fraction(normalized)
    return None


def math_answers_equal(predicted: str | None, reference: str) -> bool:
    """True when two MATH answers are the same after normalisation, or are numbers of equal value."""
    if predicted is None:
        return False
    left, right = normalize_math_answer(predicted), normalize_math_answer(reference)
    if left == right:
        return True
    left_value, right_value = _math_value(left), _math_value(right)
    return left_value is not None and left_value == right_value
