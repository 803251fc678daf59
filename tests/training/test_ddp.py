"""Two CPU processes under ``accelerate launch`` with the shipped DDP config (gloo) train exactly like one process
with their whole batch: same updates, same logged losses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from trainer_testing import (
    SGD_SETTINGS,
    assert_same_updates,
    make_trainer,
    sgd_rows,
    single_thread,  # noqa: F401 (autouse fixture)
    updates_since,
)

from tiny_models import build_tiny_model

DDP_SCRIPT = Path(__file__).with_name("ddp_run.py")
REPOSITORY = Path(__file__).resolve().parents[2]
REPOSITORY_SRC = REPOSITORY / "src"
DDP_CONFIG = REPOSITORY / "examples" / "accelerate" / "ddp.yaml"  # the shipped multi-GPU config, run on 2 CPU processes


def _run_launcher(command: list[str], environment: dict, *, timeout: float) -> tuple[int | None, str]:
    """(exit code, stderr) of the launcher; exit code None when it was still running after ``timeout`` seconds and
    its whole process group was killed (no orphaned rank keeps the port)."""
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        _, stderr = process.communicate(timeout=timeout)
        return process.returncode, stderr
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate()
        return None, stderr


@pytest.mark.slow
def test_two_process_ddp_equals_one_process_with_the_whole_batch(tmp_path):
    environment = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPOSITORY_SRC), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(DDP_CONFIG),
        "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", "29517",
        str(DDP_SCRIPT), str(tmp_path / "ddp"),
    ]  # fmt: skip
    returncode, stderr = _run_launcher(command, environment, timeout=300)
    results = [tmp_path / "ddp" / f"rank{rank}.pt" for rank in (0, 1)]
    assert all(path.exists() for path in results), f"exit code {returncode}: {stderr[-4000:]}"
    assert returncode in (0, None), stderr[-4000:]  # None: a hang at gloo's shutdown, after both ranks saved
    ddp, other_rank = (torch.load(path) for path in results)
    for name, value in ddp["parameters"].items():
        assert torch.equal(value, other_rank["parameters"][name]), f"the two processes ended with different {name}"

    single = make_trainer(tmp_path / "single", rows=sgd_rows(), per_device_train_batch_size=2, **SGD_SETTINGS)
    initial = {name: value.detach().clone() for name, value in build_tiny_model("llama").named_parameters()}
    single.train()
    final = {name: value.detach() for name, value in single.model.named_parameters()}
    assert_same_updates(updates_since(initial, final), updates_since(initial, ddp["parameters"]))
    single_losses = [entry["loss"] for entry in single.state.log_history if "loss" in entry]
    ddp_losses = [entry["loss"] for entry in ddp["logs"] if "loss" in entry]
    assert ddp_losses == pytest.approx(single_losses, rel=1e-5)
