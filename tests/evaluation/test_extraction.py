"""Answer extraction on known GSM8K, MATH and code strings."""

from __future__ import annotations

import pytest

from jacobi_forcing_hf.evaluation.extraction import (
    extract_code,
    extract_gsm8k_answer,
    gsm8k_reference_answer,
    last_boxed_content,
    math_answers_equal,
    normalize_math_answer,
    normalize_number,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Natalia sold 48/2 = 24 clips in May.\nSo 48+24 = 72 altogether.\n#### 72", "72"),
        ("3 * 1,250 = 3,750\n#### 3,750", "3750"),  # thousands separators
        ("It fell from 4 to 4 - 9 = -5 degrees.\n#### -5", "-5"),  # negative
        ("Total: $1,234,567.50\n#### $1,234,567.50", "1234567.5"),
        ("#### 12.0", "12"),
        ("so each gets 7 apples. The answer is 7.", "7"),  # no ####: "answer is"
        ("First 2 + 3 = 5, then 5 * 4 = 20 cookies", "20"),  # last number
        ("The answer is −3 degrees", "-3"),  # unicode minus
        ("We get \\boxed{1,000} in the end", "1000"),
        ("The values are 1,2,3 so the sum is 6", "6"),  # a list is not a thousands-separated number
        ("no number here", None),
    ],
)
def test_gsm8k_answer_extraction(text, expected):
    assert extract_gsm8k_answer(text) == expected


def test_gsm8k_answer_prefers_the_final_hash_line_over_later_numbers():
    assert extract_gsm8k_answer("#### 24\nThe answer is: 24 (out of 100)") == "24"
    assert extract_gsm8k_answer("2 + 2 = 4\n#### 5\nCheck: 1 2 3") == "5"


def test_gsm8k_reference_answer_and_errors():
    assert gsm8k_reference_answer("48+24 = <<48+24=72>>72\n#### 72") == "72"
    assert gsm8k_reference_answer("#### 1,000,000") == "1000000"
    with pytest.raises(ValueError, match="####"):
        gsm8k_reference_answer("the answer is 3")


def test_normalize_number_equates_equal_values():
    assert normalize_number("1,000") == normalize_number("1000.00") == "1000"
    assert normalize_number("-0.5") == normalize_number("-1/2") == "-0.5"
    assert normalize_number("1/3") == "1/3"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so $x = \\boxed{5}$.", "5"),
        ("answer: \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),  # nested braces
        ("\\boxed{x^{2}+\\sqrt{\\frac{a}{b}}}", "x^{2}+\\sqrt{\\frac{a}{b}}"),  # deeper nesting
        ("first \\boxed{1} then corrected \\boxed{2}", "2"),  # the last one wins
        ("\\fbox{42}", "42"),
        ("\\boxed 7 is it", "7"),  # no braces
        ("\\boxed{\\frac{1}{2}", None),  # unclosed
        ("no box", None),
    ],
)
def test_last_boxed_content(text, expected):
    assert last_boxed_content(text) == expected


@pytest.mark.parametrize(
    ("predicted", "reference"),
    [
        ("\\dfrac{3}{4}", "\\frac{3}{4}"),
        ("3/4", "\\frac{3}{4}"),
        ("0.75", "\\frac{3}{4}"),  # numeric value
        ("\\frac34", "\\frac{3}{4}"),  # shorthand
        ("-\\frac{1}{2}", "-0.5"),  # negative fraction
        ("10000", "10,\\!000"),  # thousands separator with a LaTeX thin space
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"),
        ("x = 5", "5"),
        ("90^\\circ", "90"),
        ("5\\%", "5"),
        ("\\text{(C)}", "(C)"),
        (".5", "\\frac{1}{2}"),
        ("\\sqrt2", "\\sqrt{2}"),
    ],
)
def test_math_answers_equal(predicted, reference):
    assert math_answers_equal(predicted, reference)


@pytest.mark.parametrize(
    ("predicted", "reference"),
    [
        ("\\frac{1}{3}", "0.33"),
        ("\\frac{2}{3}", "\\frac{3}{2}"),
        ("-5", "5"),
        ("(1,2)", "(2,1)"),
        (None, "4"),
        ("x^2+1", "x^2-1"),
    ],
)
def test_math_answers_differ(predicted, reference):
    assert not math_answers_equal(predicted, reference)


def test_normalize_math_answer_keeps_tuples_apart_from_thousands():
    assert normalize_math_answer("1,234") == "1234"
    assert normalize_math_answer("(1,23)") == "(1,23)"
    assert normalize_math_answer("1,2,3") == "1,2,3"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sure!\n```python\ndef f():\n    return 1\n```\nDone.", "def f():\n    return 1"),
        ("```\nx = 1\n```", "x = 1"),  # untagged fence
        ("```py\nx = 2\n```", "x = 2"),
        ("```bash\npip install\n```\n```python\nx = 3\n```", "x = 3"),  # skips other languages
        ("```python\ndef g():\n    return", "def g():\n    return"),  # cut by the token limit
        ("def h():\n    return 4\n", "def h():\n    return 4"),  # no fence: the text itself
    ],
)
def test_extract_code(text, expected):
    assert extract_code(text) == expected
