"""The corpus of an n-gram table: a model's greedy outputs on a prompt set, or the fixed points of trajectories.

:class:`~jacobi_forcing_hf.generation.ngram_table.NgramTable` should hold what *this* model writes, so its corpus is
the model's own greedy text on prompts that are not the evaluation's. :func:`generate_greedy_outputs` makes it with
transformers' batched greedy ``generate`` and saves it as it goes::

    output_dir/
      corpus.json      what was generated: model, prompts, max_new_tokens, batch size (checked on a re-run)
      outputs.jsonl    one line per prompt, in prompt order: the new token ids, cut after the first EOS

A re-run with the same arguments continues after the last complete line. :func:`trajectory_outputs` instead joins
the fixed points of trajectories already collected (``jacobi-forcing collect``), which are the same greedy text.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from .data.prompts import load_prompts, prompt_set_fingerprint, tokenize_prompts
from .data.validation import require_int
from .trajectories import _pad_token_id, left_pad, model_weights_fingerprint

CORPUS_FORMAT = "jacobi-forcing-ngram-corpus"
META_NAME = "corpus.json"
OUTPUTS_NAME = "outputs.jsonl"


def generate_greedy_outputs(
    model: Any,
    tokenizer: Any,
    prompts: Any,
    *,
    output_dir: str | os.PathLike,
    num_prompts: int | None = None,
    max_new_tokens: int = 128,
    batch_size: int = 16,
    split: str = "train",
    progress: bool = True,
) -> list[list[int]]:
    """The greedy continuation of each of the first ``num_prompts`` prompts, saved in ``output_dir`` (resumable).

    Args:
        model: a causal LM; decoded with ``generate(do_sample=False)`` on left-padded batches.
        tokenizer: its tokenizer (chat prompts go through its chat template).
        prompts: anything :func:`~jacobi_forcing_hf.data.prompts.load_prompts` accepts.
        output_dir: where ``corpus.json`` and ``outputs.jsonl`` go.
        num_prompts: the first N prompts (default: all); a later run with a larger N continues the same folder.
        max_new_tokens: the most new tokens per prompt.
        batch_size: prompts decoded together.
        split: the split to read from a dataset dict, folder or Hub id.
        progress: show a progress bar over batches.

    Raises:
        ValueError: bad arguments, or an ``output_dir`` started with another model, prompt set or settings;
            before any decoding.
    """
    import torch
    from tqdm.auto import tqdm

    require_int("max_new_tokens", max_new_tokens, minimum=1)
    require_int("batch_size", batch_size, minimum=1)
    dataset = load_prompts(prompts, split=split)
    all_tokens = tokenize_prompts(dataset, tokenizer)
    if num_prompts is not None:
        require_int("num_prompts", num_prompts, minimum=1)
        if num_prompts > len(dataset):
            raise ValueError(f"num_prompts={num_prompts} but the prompt set has only {len(dataset)} prompts.")
    prompt_tokens = all_tokens[:num_prompts]
    directory = Path(output_dir)
    meta = {  # of the whole prompt set: a later run may ask for more prompts and continue
        "format": CORPUS_FORMAT,
        "model_weights_sha256": model_weights_fingerprint(model),
        "prompt_set_fingerprint": prompt_set_fingerprint(dataset),
        "prompt_tokens_sha256": hashlib.sha256(json.dumps(all_tokens).encode()).hexdigest(),
        "max_new_tokens": max_new_tokens,
        "batch_size": batch_size,
    }
    outputs = _open_corpus(directory, meta, total=len(prompt_tokens), batch_size=batch_size)
    pad_token_id = _pad_token_id(model, tokenizer)
    eos_token_id = tokenizer.eos_token_id
    device = next(model.parameters()).device
    starts = range(len(outputs), len(prompt_tokens), batch_size)
    with (directory / OUTPUTS_NAME).open("a") as file:
        for start in tqdm(starts, desc="Greedy outputs", unit="batch", disable=not progress):
            batch = prompt_tokens[start : start + batch_size]
            input_ids, attention_mask = left_pad(batch, pad_token_id, device=device)
            with torch.inference_mode():
                generated = model.generate(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=pad_token_id,
                )
            new = [cut_after_eos(row, eos_token_id) for row in generated[:, input_ids.shape[1] :].tolist()]
            outputs.extend(new)
            file.write("".join(json.dumps(output) + "\n" for output in new))
            file.flush()
    return outputs


def trajectory_outputs(trajectories: Any, eos_token_id: int | None = None) -> list[list[int]]:
    """Each prompt's greedy output from collected trajectories: its blocks' fixed points in order, cut after EOS."""
    blocks: defaultdict[int, dict[int, list[int]]] = defaultdict(dict)
    for row in trajectories:
        blocks[row["prompt_id"]][row["block_index"]] = row["output_ids"]
    outputs = []
    for prompt_id in sorted(blocks):
        tokens = [token for index in sorted(blocks[prompt_id]) for token in blocks[prompt_id][index]]
        outputs.append(cut_after_eos(tokens, eos_token_id))
    return outputs


def cut_after_eos(tokens: list[int], eos_token_id: int | None) -> list[int]:
    """``tokens`` up to and including the first ``eos_token_id`` (what follows it is padding or noise)."""
    if eos_token_id is not None and eos_token_id in tokens:
        return tokens[: tokens.index(eos_token_id) + 1]
    return tokens


def _open_corpus(directory: Path, meta: dict[str, Any], *, total: int, batch_size: int) -> list[list[int]]:
    """The outputs of the whole batches already in ``directory``, after checking that they are this run's.

    A batch torn by an interruption is dropped whole, so that the resumed run pads exactly the batches an
    uninterrupted one would have (padding can move float results, hence greedy tokens).
    """
    directory.mkdir(parents=True, exist_ok=True)
    meta_path = directory / META_NAME
    if meta_path.is_file():
        saved = json.loads(meta_path.read_text())
        changed = sorted(key for key in meta if saved.get(key) != meta[key])
        if changed:
            raise ValueError(
                f"{directory} holds greedy outputs made with other {', '.join(changed)}; use another folder "
                "or the same model, prompts and settings."
            )
    else:
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    outputs_path = directory / OUTPUTS_NAME
    if not outputs_path.is_file():
        return []
    lines = outputs_path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if line.endswith("\n")]
    if len(kept) < total:
        kept = kept[: len(kept) // batch_size * batch_size]
    if len(kept) != len(lines):
        outputs_path.write_text("".join(kept))
    return [json.loads(line) for line in kept[:total]]
