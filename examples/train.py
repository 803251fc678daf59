"""Jacobi Forcing training from a YAML config: ``jacobi-forcing train`` as a script, for ``accelerate launch``.

    python examples/train.py --config examples/configs/jacobi_forcing_n16.yaml
    accelerate launch --config_file examples/accelerate/ddp.yaml examples/train.py \
        --config examples/configs/jacobi_forcing_n16.yaml --gradient_accumulation_steps 1
"""

import sys

from jacobi_forcing_hf.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
