"""Name the hardware and software a measurement ran on: absolute speeds mean nothing without it."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU model from ``/proc/cpuinfo`` (Linux), else what ``platform`` reports."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def hardware_summary(device: Any = None, dtype: Any = None) -> dict[str, Any]:
    """CPU model and core count, torch threads, GPU name (when the device is CUDA), library versions.

    Example:
        >>> sorted(hardware_summary())[:3]
        ['cpu', 'cpu_count', 'device']
    """
    import torch
    import transformers

    from .. import __version__

    summary: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device) if device is not None else "cpu",
        "dtype": str(dtype).removeprefix("torch.") if dtype is not None else None,
        "gpu": None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "jacobi_forcing_hf": __version__,
    }
    if device is not None and torch.device(device).type == "cuda" and torch.cuda.is_available():
        summary["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return summary


def describe_hardware(summary: dict[str, Any]) -> str:
    """One line for reports: the device (GPU name or "CPU"), dtype, host CPU and cores, torch threads and the
    library versions."""
    where = summary["gpu"] or "CPU"
    return (
        f"{where} ({summary['device']}, {summary['dtype']}); "
        f"host CPU {summary['cpu']} × {summary['cpu_count']}, "
        f"{summary['torch_threads']} torch threads; torch {summary['torch']}, "
        f"transformers {summary['transformers']}, jacobi-forcing-hf {summary['jacobi_forcing_hf']}"
    )
