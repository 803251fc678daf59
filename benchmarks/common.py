"""Shared pieces of the benchmark scripts: prompts, hardware description, result writing."""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
from pathlib import Path

import torch

RESULTS_DIR = Path(__file__).resolve().parent.parent / "docs" / "results"


def humaneval_chat_inputs(tokenizer, count: int) -> list[dict[str, torch.Tensor]]:
    """The first ``count`` HumanEval prompts through the chat template (the same prompts for every method)."""
    from jacobi_forcing_hf.pipeline import held_out_prompt_dataset

    return [
        tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        for messages in held_out_prompt_dataset(count)["messages"]
    ]


def hardware() -> dict[str, str | int]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import transformers

    return {
        "cpu": cpu,
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else "none",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def write_results(name: str, payload: dict, markdown: str) -> None:
    """Write ``docs/results/<name>.json`` and ``.md``, both stamped with the command line that produced them."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    command = " ".join(shlex.quote(part) for part in [Path(sys.executable).name, *sys.argv])
    payload = {"command": command, "hardware": hardware(), **payload}
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    header = f"<!-- produced by: {command} -->\n\nHardware: {payload['hardware']}\n\n"
    (RESULTS_DIR / f"{name}.md").write_text(header + markdown)


def split_named(argument: str, value_name: str = "VALUE") -> tuple[str, str]:
    """A ``NAME=VALUE`` command-line argument → ``(name, value)``; argparse reports anything else."""
    name, separator, value = argument.partition("=")
    if not separator or not name or not value:
        raise argparse.ArgumentTypeError(f"expected NAME={value_name}, got {argument!r}")
    return name, value


def line_plot(series: dict[str, tuple[list, list]], path: Path, *, xlabel: str, ylabel: str, title: str) -> None:
    """One line per named ``(xs, ys)`` series, written as a PNG to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for name, (xs, ys) in series.items():
        axis.plot(xs, ys, marker="o", label=name)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
