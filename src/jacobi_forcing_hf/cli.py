"""The ``jacobi-forcing`` command line: one subcommand per stage of the pipeline.

Each subcommand lives in ``jacobi_forcing_hf.commands.<name>`` and exposes ``register(subparsers)``; its module keeps
heavy imports (torch, transformers) inside the handler so that ``--help`` answers instantly.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__

# Subcommand modules, in the order ``--help`` lists them. A later issue adds its module name here.
COMMAND_MODULES: tuple[str, ...] = (
    "demo",
    "collect",
    "ngram_table",
    "pack",
    "train",
    "extract_lora",
    "evaluate",
    "bench",
    "sweep",
    "push",
    "pipeline",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="jacobi-forcing",
        description="Jacobi Forcing for HuggingFace models: decode, collect, pack, train, evaluate, share.",
    )
    parser.add_argument("--version", action="version", version=f"jacobi-forcing-hf {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f".commands.{name}", __package__).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jacobi-forcing`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
