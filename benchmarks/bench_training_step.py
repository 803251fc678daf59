"""One training step of JacobiForcingTrainer vs a plain SFTTrainer step over the same packed tokens.

Both trainers hold the embedded SmolLM2-135M-Instruct (fp32) and train on the same synthetic packed rows
(prompt ‖ K_0 ‖ L_0 ‖ … with P=150, n=16, T=6: 342 tokens). The SFT step treats each row as ordinary text (2D mask,
TRL's fused LM head over every position); the Jacobi Forcing step uses the 4D noise-conditioned mask, shared
positions and both losses. A step = forward + backward + AdamW update, batch 1.

* time: the two trainers' steps alternate in one process (so machine load hits both alike), ``--steps`` steps
  each after one warm-up step; wall and process CPU time; the ratio is the median of the per-pair ratios;
* peak memory: each trainer in a fresh subprocess, large allocations returned to the OS on free
  (``MALLOC_MMAP_THRESHOLD_``), peak RSS of one steady-state step (``VmHWM`` after resetting it, Linux) minus the RSS
  before it, i.e. the step's transient memory (activations, logits, gradients), plus the absolute peak.

    python benchmarks/bench_training_step.py            # writes docs/results/training_step.{json,md}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results"
VARIANTS = ("jacobi_forcing", "sft")
TARGET_RATIO = 1.2


def synthetic_rows(count: int, *, vocab_size: int, prompt_length: int, block_size: int, num_blocks: int) -> list[dict]:
    """Packed rows of random tokens; each noisy block copies its clean block up to a random first divergence."""
    rng = random.Random(0)
    rows = []
    for _ in range(count):
        ids = [rng.randrange(3, vocab_size) for _ in range(prompt_length)]
        for _ in range(num_blocks):
            clean = [rng.randrange(3, vocab_size) for _ in range(block_size)]
            first_divergence = rng.randrange(block_size)
            noisy = clean[:first_divergence] + [
                rng.randrange(3, vocab_size) for _ in range(block_size - first_divergence)
            ]
            ids += noisy + clean
        rows.append({"input_ids": ids, "prompt_length": prompt_length, "num_blocks": num_blocks})
    return rows


def build_trainer(variant: str, rows: list[dict], block_size: int, output_dir: str):
    """A trainer of ``variant`` over ``rows`` with the embedded model, ready for manual steps."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from jacobi_forcing_hf import JacobiForcingConfig, JacobiForcingTrainer, load_default_model

    model, tokenizer = load_default_model()
    model.train()
    common = {
        "output_dir": output_dir,
        "per_device_train_batch_size": 1,
        "gradient_accumulation_steps": 1,
        "activation_checkpointing": False,
        "report_to": "none",
        "bf16": False,
        "dataloader_pin_memory": False,
    }
    if variant == "jacobi_forcing":
        args = JacobiForcingConfig(block_size=block_size, **common)
        trainer = JacobiForcingTrainer(
            model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer
        )
    else:
        args = SFTConfig(max_length=None, **common)
        sft_rows = Dataset.from_list([{"input_ids": row["input_ids"]} for row in rows])
        trainer = SFTTrainer(model, args=args, train_dataset=sft_rows, processing_class=tokenizer)
    trainer.create_optimizer()
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train's loop, which we step by hand
    batch = next(iter(trainer.get_train_dataloader()))
    return trainer, batch


def training_step(trainer, batch) -> None:
    """Forward + backward (the Trainer's own ``training_step``) and the AdamW update."""
    trainer.training_step(trainer.model, batch)
    trainer.optimizer.step()
    trainer.optimizer.zero_grad(set_to_none=True)


def time_interleaved(trainers: dict, steps: int) -> dict[str, dict[str, list[float]]]:
    """Wall and process CPU seconds of each trainer's steps, alternating which goes first; one warm-up step each."""
    timings = {variant: {"wall_s": [], "cpu_s": []} for variant in trainers}
    for step in range(steps + 1):
        order = list(trainers) if step % 2 == 0 else list(reversed(trainers))
        for variant in order:
            trainer, batch = trainers[variant]
            wall, cpu = time.perf_counter(), time.process_time()
            training_step(trainer, batch)
            if step > 0:  # the first step is warm-up (AdamW state allocation)
                timings[variant]["wall_s"].append(time.perf_counter() - wall)
                timings[variant]["cpu_s"].append(time.process_time() - cpu)
    return timings


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_probe(variant: str, rows: list[dict], block_size: int) -> dict[str, float]:
    """Run in a fresh process: one warm-up step, then the peak RSS of one step (MiB)."""
    with tempfile.TemporaryDirectory() as output_dir:
        trainer, batch = build_trainer(variant, rows, block_size, output_dir)
        training_step(trainer, batch)
        before = _status_kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM, the peak RSS
        training_step(trainer, batch)
        peak = _status_kib("VmHWM")
    return {"rss_before_step_mib": before / 1024, "peak_rss_mib": peak / 1024, "step_peak_mib": (peak - before) / 1024}


def measure_memory_in_subprocess(variant: str, settings: argparse.Namespace) -> dict[str, float]:
    environment = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
    command = [sys.executable, __file__, "--memory-probe", variant, *settings.passthrough]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def hardware() -> dict:
    cpu = platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__}


def markdown(payload: dict) -> str:
    shape, ratios = payload["shape"], payload["ratios"]
    rows = [
        "| trainer | wall time / step, median (s) | CPU time / step, median (s) | steps | step peak memory (MiB) "
        "| peak RSS (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for variant in VARIANTS:
        result = payload["results"][variant]
        rows.append(
            f"| {variant} | {result['median_wall_s']:.2f} | {result['median_cpu_s']:.2f} | {len(result['wall_s'])} | "
            f"{result['memory']['step_peak_mib']:.0f} | {result['memory']['peak_rss_mib']:.0f} |"
        )
    rows.append(
        f"| **Jacobi Forcing / SFT** | **{ratios['wall_time']:.2f}×** | **{ratios['cpu_time']:.2f}×** | | "
        f"**{ratios['step_memory']:.2f}×** | **{ratios['peak_rss']:.2f}×** |"
    )
    return (
        f"One training step (forward + backward + AdamW, batch 1, fp32, {payload['hardware']['torch_threads']} "
        f"thread) of the embedded SmolLM2-135M-Instruct on a packed row of {shape['length']} tokens "
        f"(P={shape['prompt_length']}, n={shape['block_size']}, T={shape['num_blocks']}); SFT = TRL's SFTTrainer "
        f"on the same tokens as plain text. Time ratios are medians of the per-pair ratios (the two trainers' steps "
        f"alternate); target ≤ {TARGET_RATIO}×. Machine: {payload['hardware']['cpu']}, "
        f"{payload['hardware']['cores']} cores shared with other jobs (1-min load average "
        f"{payload['load_average_1min_at_end']:.1f} at the end).\n\n" + "\n".join(rows) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=6, help="timed steps per trainer (after one warm-up step)")
    parser.add_argument("--prompt-length", type=int, default=150)
    parser.add_argument("--block-size", type=int, default=16)
    parser.add_argument("--num-blocks", type=int, default=6)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: steadiest on a machine shared with other jobs)"
    )
    parser.add_argument("--memory-probe", choices=VARIANTS, help=argparse.SUPPRESS)
    settings = parser.parse_args()
    torch.set_num_threads(settings.threads)
    settings.passthrough = [
        f"--threads={settings.threads}",
        f"--prompt-length={settings.prompt_length}",
        f"--block-size={settings.block_size}",
        f"--num-blocks={settings.num_blocks}",
    ]
    rows = synthetic_rows(
        2,
        vocab_size=49152,
        prompt_length=settings.prompt_length,
        block_size=settings.block_size,
        num_blocks=settings.num_blocks,
    )
    if settings.memory_probe:
        print(json.dumps(memory_probe(settings.memory_probe, rows, settings.block_size)))
        return

    with tempfile.TemporaryDirectory() as output_dir:
        trainers = {variant: build_trainer(variant, rows, settings.block_size, output_dir) for variant in VARIANTS}
        timings = time_interleaved(trainers, settings.steps)
        del trainers
    results = {}
    for variant in VARIANTS:
        results[variant] = {
            **timings[variant],
            "median_wall_s": statistics.median(timings[variant]["wall_s"]),
            "median_cpu_s": statistics.median(timings[variant]["cpu_s"]),
            "memory": measure_memory_in_subprocess(variant, settings),
        }
    jf, sft = results["jacobi_forcing"], results["sft"]
    payload = {
        "command": " ".join(shlex.quote(part) for part in ["python", *sys.argv]),
        "hardware": hardware(),
        "load_average_1min_at_end": os.getloadavg()[0],
        "shape": {
            "prompt_length": settings.prompt_length,
            "block_size": settings.block_size,
            "num_blocks": settings.num_blocks,
            "length": settings.prompt_length + 2 * settings.block_size * settings.num_blocks,
        },
        "results": results,
        "ratios": {
            # steps ran in adjacent pairs, so the per-pair ratio cancels most of the machine's load swings
            "wall_time": statistics.median(a / b for a, b in zip(jf["wall_s"], sft["wall_s"])),
            "cpu_time": statistics.median(a / b for a, b in zip(jf["cpu_s"], sft["cpu_s"])),
            "step_memory": jf["memory"]["step_peak_mib"] / sft["memory"]["step_peak_mib"],
            "peak_rss": jf["memory"]["peak_rss_mib"] / sft["memory"]["peak_rss_mib"],
        },
        "target_ratio": TARGET_RATIO,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "training_step.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / "training_step.md").write_text(f"<!-- produced by: {payload['command']} -->\n\n" + markdown(payload))
    print(markdown(payload))


if __name__ == "__main__":
    main()
