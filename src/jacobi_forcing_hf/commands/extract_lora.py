"""``jacobi-forcing extract-lora``: compress a full fine-tune into a rank-r LoRA adapter folder (truncated SVD)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._errors import report_bad_input


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "extract-lora",
        help="write a fully fine-tuned model as a small LoRA adapter on its base model",
        description=(
            "Factor each linear layer's weight change into rank-r LoRA factors (truncated SVD), keep changed "
            "normalisation weights whole, and save a PEFT adapter folder (factors in bfloat16) that loads with "
            "PeftModel.from_pretrained(base, folder)."
        ),
    )
    parser.add_argument("tuned", help="folder of the fine-tuned model (for example a pipeline's train/final)")
    parser.add_argument("--base", default="embedded", help="'embedded' (SmolLM2-135M-Instruct), a folder or Hub id")
    parser.add_argument("--rank", type=int, default=32, help="LoRA rank r (default 32)")
    parser.add_argument("--output-dir", required=True, help="folder for the adapter")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluation.errors import EvaluationInputError
    from ..evaluation.loading import check_model_argument, load_model
    from ..training.lora_extraction import ADAPTER_WEIGHTS_NAME, extract_lora, save_lora_adapter

    try:
        if args.rank < 1:
            raise ValueError(f"--rank must be >= 1, got {args.rank}")
        check_model_argument(args.tuned, "tuned")
        base = load_model(args.base)
        tuned = load_model(args.tuned)
        extraction = extract_lora(base, tuned, rank=args.rank)
    except (ValueError, EvaluationInputError) as error:
        return report_bad_input("extract-lora", error)
    extraction.model.peft_config["default"].base_model_name_or_path = args.base  # not a machine's cache path
    folder = save_lora_adapter(extraction.model, args.output_dir)
    size_mb = (Path(folder) / ADAPTER_WEIGHTS_NAME).stat().st_size / 1e6
    print(
        f"rank-{extraction.rank} adapter of {len(extraction.kept_energy)} linear layers "
        f"(mean energy kept {extraction.mean_kept_energy:.3f}) and {len(extraction.saved_whole)} whole modules: "
        f"{size_mb:.1f} MB in {folder}"
    )
    if extraction.dropped:
        print(f"changes not carried ({len(extraction.dropped)}): {', '.join(extraction.dropped[:6])}")
    return 0
