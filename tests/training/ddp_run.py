"""Run by ``accelerate launch`` with two CPU processes in test_ddp.py: two SGD steps of JacobiForcingTrainer, one
sequence per process, then rank 0 saves the parameters after checking that both processes hold the same ones."""

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
    flat = torch.cat([parameter.detach().flatten() for parameter in trainer.model.parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(2)]
    dist.all_gather(gathered, flat)
    assert torch.equal(gathered[0], gathered[1]), "the two processes ended with different parameters"
    if trainer.accelerator.is_main_process:
        state = {name: value.detach() for name, value in trainer.model.named_parameters()}
        torch.save({"parameters": state, "logs": trainer.state.log_history}, Path(output_dir) / "ddp_result.pt")
    # an orderly shutdown: leaving gloo's threads to the interpreter's exit can abort a rank
    # ("terminate called without an active exception"), seen once on a loaded machine
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
