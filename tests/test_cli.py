"""The ``jacobi-forcing`` command line."""

from __future__ import annotations

import subprocess
import sys

import jacobi_forcing_hf
from jacobi_forcing_hf.cli import COMMAND_MODULES, main


def test_help_lists_every_subcommand(capsys):
    try:
        main(["--help"])
    except SystemExit as exit_:
        assert exit_.code == 0
    out = capsys.readouterr().out
    for name in COMMAND_MODULES:
        assert name in out


def test_console_script_answers_version():
    result = subprocess.run(
        [sys.executable, "-m", "jacobi_forcing_hf.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert jacobi_forcing_hf.__version__ in result.stdout


def test_no_subcommand_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out
