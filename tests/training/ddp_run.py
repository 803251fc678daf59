"""Run by ``accelerate launch`` with two CPU processes in test_ddp.py: two SGD steps of JacobiForcingTrainer, one
sequence per process, then each rank saves its parameters and logs to ``rank<r>.pt``."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist
from datasets import Dataset

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parent.parent)]

from trainer_testing import SGD_SETTINGS, fast_config, sgd_rows  # noqa: E402

from jacobi_forcing_hf import JacobiForcingTrainer  # noqa: E402
from tiny_models import build_tiny_model  # noqa: E402


def main(output_dir: str) -> None:
    torch.set_num_threads(1)
    config = fast_config(output_dir, per_device_train_batch_size=1, use_cpu=True, **SGD_SETTINGS)
    trainer = JacobiForcingTrainer(
        build_tiny_model("llama").train(), args=config, train_dataset=Dataset.from_list(sgd_rows())
    )
    assert trainer.accelerator.num_processes == 2, "expected two processes"
    trainer.train()
    # every rank saves what it ended with before any further collective, so the test still has the results should
    # gloo hang at shutdown (seen once on a loaded machine, after training had finished)
    state = {name: value.detach() for name, value in trainer.model.named_parameters()}
    rank = trainer.accelerator.process_index
    torch.save({"parameters": state, "logs": trainer.state.log_history}, Path(output_dir) / f"rank{rank}.pt")
    # an orderly shutdown: leaving gloo's threads to the interpreter's exit can abort a rank
    # ("terminate called without an active exception"), seen once on a loaded machine
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
