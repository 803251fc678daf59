"""Share Jacobi Forcing work on the Hugging Face Hub: data (trajectories, training sequences) and checkpoints.

* :func:`push_trajectories`, :func:`push_training_data` (or :func:`push_dataset` with ``kind=``) push a
  ``datasets.Dataset`` of ours as one config of a dataset repo, with a generated dataset card
  (:func:`collection_facts` reads what a collection folder recorded, for that card);
* :func:`push_checkpoint` pushes a model or checkpoint folder with its tokenizer, a generation config carrying
  the Jacobi decoding defaults, the ``custom_generate/`` engine folder and a model card;
* :func:`prepare_checkpoint_folder` writes those extra files into a trainer's output folder;
* :func:`build_model_card` and :func:`jacobi_generation_config` are the building blocks.

Every push checks its inputs before uploading and uploads in one commit; refusals raise :class:`HubPushError`.
"""

from .cards import build_model_card, render_dataset_card
from .checkpoint import jacobi_generation_config, prepare_checkpoint_folder, push_checkpoint
from .data import (
    DATASET_KINDS,
    TRAINING_DATA,
    TRAJECTORIES,
    collection_facts,
    push_dataset,
    push_training_data,
    push_trajectories,
)
from .repo import HubPushError

__all__ = [
    "DATASET_KINDS",
    "TRAINING_DATA",
    "TRAJECTORIES",
    "HubPushError",
    "build_model_card",
    "collection_facts",
    "jacobi_generation_config",
    "prepare_checkpoint_folder",
    "push_checkpoint",
    "push_dataset",
    "push_training_data",
    "push_trajectories",
    "render_dataset_card",
]
