"""``JacobiForcingDataCollator``: packed Jacobi Forcing rows -> one training batch (REFERENCE §4.3-4.7).

A packed row is ``prompt ‖ K_0 ‖ L_0 ‖ … ‖ K_{T-1} ‖ L_{T-1}``: ``K_j`` is a noisy Jacobi state of block ``j`` and
``L_j`` its fixed point ("clean" block), each ``block_size`` (n) tokens, so the row has ``P + 2·T·n`` tokens for a
prompt of ``P`` tokens. One forward pass over such a row trains both streams at once:

* the **clean stream** ``prompt ‖ L_0 ‖ … ‖ L_{T-1}`` is ordinary teacher-forced language modelling (the AR loss);
* every noisy block ``K_j`` sees the prompt and the earlier noisy blocks (``attention_context="noisy"``, the reference)
  or the earlier clean blocks (``"clean"``), and its predictions are pulled towards the clean predictions at the same
  offsets (the progressive consistency loss).

``K_j`` and ``L_j`` share position ids, so both streams look like the same continuation to the model. The collator
builds the 4D additive attention mask, the position ids and the index tensors the two losses gather from; the
trainer only runs the model and reduces.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

# Segment kinds of a position; PADDING marks right padding added by the collator.
PADDING, PROMPT, NOISY, CLEAN = 0, 1, 2, 3
ATTENTION_CONTEXTS = ("noisy", "clean")
REQUIRED_COLUMNS = ("input_ids", "prompt_length")


@dataclass
class RowLayout:
    """Where the segments of one packed row are: ``prompt_length`` tokens, then ``num_blocks`` (K_j, L_j) pairs."""

    prompt_length: int
    num_blocks: int
    block_size: int

    @property
    def length(self) -> int:
        return self.prompt_length + 2 * self.num_blocks * self.block_size

    def noisy_start(self, block: int) -> int:
        """First position of ``K_block``."""
        return self.prompt_length + 2 * block * self.block_size

    def clean_start(self, block: int) -> int:
        """First position of ``L_block``."""
        return self.prompt_length + (2 * block + 1) * self.block_size


@dataclass
class JacobiForcingDataCollator:
    """Pad packed Jacobi Forcing rows and build the 4D mask, shared position ids and loss indices of REFERENCE §4.

    Args:
        block_size: ``n``, the block size the rows were packed with.
        pad_token_id: id used for right padding and for the post-EOS replacement of §4.5.
        attention_context: what a noisy block ``K_j`` sees besides the prompt and its own causal prefix: the earlier
            noisy blocks (``"noisy"``, the reference trainer) or the earlier clean blocks (``"clean"``, CLLM-like).
        eos_token_id: EOS id(s). When given, tokens after the first EOS of the last clean block become
            ``pad_token_id`` and AR pairs inside a clean block stop at its first EOS (§4.5-4.6).
        include_prompt_in_ar: train the AR loss on the prompt's next-token pairs too (reference: ``True``).
        keep_last_offset: keep the last offset of each noisy block in the consistency loss (reference: ``True``).
        mask_dtype: floating dtype of the additive mask (0 = visible, ``finfo(dtype).min`` = hidden).
        pad_to_multiple_of: round the padded length up to a multiple of this.

    Each feature is a mapping with ``input_ids`` (``list[int]``) and ``prompt_length`` (``int``); ``num_blocks`` and
    ``block_size``, when present (``build_training_sequences`` writes both), are checked against the row length and
    the collator's block size; other columns are ignored. The batch holds:

    * ``input_ids`` (B, L), right padded, with the post-EOS replacement applied;
    * ``attention_mask`` (B, 1, L, L) additive float mask; a padded query sees only itself (no NaN);
    * ``position_ids`` (B, L): prompt ``0 … P-1``, ``K_j`` and ``L_j`` both ``P + j·n … P + j·n + n - 1``;
    * ``num_blocks`` (B,): T per row;
    * ``ar_logit_index`` / ``ar_target_index`` / ``ar_row_index``: one entry per AR pair, flat indices into the
      (B·L) grid of the position whose logits predict and of the position holding the target token, and the row;
    * ``consistency_student_index`` / ``consistency_teacher_index`` / ``consistency_row_index``: one entry per kept
      consistency position: flat index of the noisy position ``K_j + t``, of the clean position ``L_j + t``, and
      the row.

    Pad targets are dropped from both losses as in the reference (a target equal to ``pad_token_id``), except when the
    pad id is also an EOS id: then only the positions after the first EOS are dropped, so the model still learns to
    stop.

    Example (the worked example of REFERENCE §4.4, P=2, n=3, T=2):

        >>> collator = JacobiForcingDataCollator(block_size=3, pad_token_id=0)
        >>> row = {"input_ids": [5, 6, 10, 21, 22, 10, 11, 12, 13, 14, 25, 13, 14, 15], "prompt_length": 2}
        >>> batch = collator([row])
        >>> batch["position_ids"].tolist()
        [[0, 1, 2, 3, 4, 2, 3, 4, 5, 6, 7, 5, 6, 7]]
        >>> (batch["attention_mask"][0, 0] == 0).int()[8].tolist()  # what K1.0 sees: prompt, K0, itself
        [1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0]
        >>> list(zip(batch["ar_logit_index"].tolist(), batch["ar_target_index"].tolist()))
        [(0, 1), (1, 5), (5, 6), (6, 7), (7, 11), (11, 12), (12, 13)]
        >>> batch["consistency_student_index"].tolist(), batch["consistency_teacher_index"].tolist()
        ([3, 4, 10], [6, 7, 13])
    """

    block_size: int
    pad_token_id: int
    attention_context: str = "noisy"
    eos_token_id: int | Sequence[int] | None = None
    include_prompt_in_ar: bool = True
    keep_last_offset: bool = True
    mask_dtype: torch.dtype = torch.float32
    pad_to_multiple_of: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.block_size, int) or self.block_size < 1:
            raise ValueError(f"block_size must be a positive integer, got {self.block_size!r}")
        if self.attention_context not in ATTENTION_CONTEXTS:
            raise ValueError(f"attention_context must be one of {ATTENTION_CONTEXTS}, got {self.attention_context!r}")
        if self.pad_token_id is None:
            raise ValueError("pad_token_id is required (used for right padding and the post-EOS replacement)")
        if not self.mask_dtype.is_floating_point:
            raise ValueError(f"mask_dtype must be a floating dtype (the mask is additive), got {self.mask_dtype}")
        if self.pad_to_multiple_of is not None and self.pad_to_multiple_of < 1:
            raise ValueError(f"pad_to_multiple_of must be None or >= 1, got {self.pad_to_multiple_of}")

    @property
    def eos_token_ids(self) -> list[int]:
        if self.eos_token_id is None:
            return []
        if isinstance(self.eos_token_id, int):
            return [self.eos_token_id]
        return list(self.eos_token_id)

    # ----------------------------------------------------------------------------------------------- validation
    def row_layout(self, index: int, feature: dict[str, Any]) -> RowLayout:
        """The layout of one row, or a ValueError naming the row and what is wrong with it."""
        for column in REQUIRED_COLUMNS:
            if column not in feature:
                raise ValueError(
                    f"row {index} has no {column!r} field (it has {sorted(feature)}); Jacobi Forcing rows need "
                    f"{list(REQUIRED_COLUMNS)}, as written by jacobi_forcing_hf.build_training_sequences"
                )
        return self._layout(
            index,
            len(feature["input_ids"]),
            int(feature["prompt_length"]),
            feature.get("num_blocks"),
            feature.get("block_size"),
        )

    def _layout(
        self, index: int, length: int, prompt_length: int, num_blocks: int | None, block_size: int | None = None
    ) -> RowLayout:
        n = self.block_size
        if block_size is not None and int(block_size) != n:
            raise ValueError(
                f"row {index} was packed with block_size={int(block_size)} but the collator (and training config) "
                f"has block_size={n}; set block_size={int(block_size)} or repack the data"
            )
        if prompt_length < 1:
            raise ValueError(f"row {index}: prompt_length must be >= 1, got {prompt_length}")
        response = length - prompt_length
        if response <= 0 or response % (2 * n) != 0:
            raise ValueError(
                f"row {index}: length {length} is not prompt_length + 2·T·block_size for a whole number of blocks "
                f"T >= 1 (prompt_length={prompt_length}, block_size={n}, so the length must be {prompt_length} + "
                f"{2 * n}·T). Was the data packed with another block size?"
            )
        layout = RowLayout(prompt_length, response // (2 * n), n)
        if num_blocks is not None and int(num_blocks) != layout.num_blocks:
            raise ValueError(
                f"row {index}: num_blocks={int(num_blocks)} but length {length} = prompt_length {prompt_length} + "
                f"2·{layout.num_blocks}·{n} implies {layout.num_blocks} blocks of block_size={n}. The data were "
                f"packed with block size {response // (2 * int(num_blocks)) if int(num_blocks) > 0 else '?'}; "
                f"set block_size accordingly."
            )
        return layout

    def check_dataset(self, dataset: Any, name: str = "train") -> None:
        """Validate every row of a map-style ``datasets.Dataset`` up front (reads only lengths, via Arrow)."""
        import pyarrow.compute as pc

        columns = set(dataset.column_names)
        missing = [column for column in REQUIRED_COLUMNS if column not in columns]
        if missing:
            raise ValueError(
                f"the {name} dataset has no column(s) {missing} (it has {sorted(columns)}); Jacobi Forcing rows "
                f"need {list(REQUIRED_COLUMNS)}, as written by jacobi_forcing_hf.build_training_sequences"
            )
        optional = [column for column in ("num_blocks", "block_size") if column in columns]
        first_row = 0
        for table in dataset.select_columns([*REQUIRED_COLUMNS, *optional]).with_format("arrow").iter(batch_size=8192):
            lengths = pc.list_value_length(table["input_ids"]).to_pylist()
            prompts = table["prompt_length"].to_pylist()
            absent = [None] * len(lengths)
            blocks = table["num_blocks"].to_pylist() if "num_blocks" in optional else absent
            sizes = table["block_size"].to_pylist() if "block_size" in optional else absent
            for offset, (length, prompt, block, size) in enumerate(zip(lengths, prompts, blocks, sizes)):
                try:
                    self._layout(first_row + offset, length, prompt, block, size)
                except ValueError as error:
                    raise ValueError(f"{name} dataset: {error}") from None
            first_row += len(lengths)

    # -------------------------------------------------------------------------------------------------- batching
    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        layouts = [self.row_layout(index, feature) for index, feature in enumerate(features)]
        lengths = torch.tensor([layout.length for layout in layouts])
        padded_length = int(lengths.max())
        if self.pad_to_multiple_of:
            padded_length = -(-padded_length // self.pad_to_multiple_of) * self.pad_to_multiple_of

        input_ids = torch.full((len(features), padded_length), self.pad_token_id, dtype=torch.long)
        for row, feature in enumerate(features):
            input_ids[row, : lengths[row]] = torch.as_tensor(feature["input_ids"], dtype=torch.long)

        segments = SegmentMap.build(
            prompt_lengths=torch.tensor([layout.prompt_length for layout in layouts]),
            lengths=lengths,
            padded_length=padded_length,
            block_size=self.block_size,
        )
        num_blocks = torch.tensor([layout.num_blocks for layout in layouts])
        input_ids = self._replace_after_eos(input_ids, segments, num_blocks)
        visible = attention_visibility(segments.kind, segments.block, self.attention_context)

        batch = {
            "input_ids": input_ids,
            "attention_mask": additive_mask(visible, self.mask_dtype),
            "position_ids": segments.position_ids,
            "num_blocks": num_blocks,
        }
        batch.update(self._ar_pairs(input_ids, segments, num_blocks))
        batch.update(self._consistency_pairs(input_ids, segments))
        return batch

    def _is_eos(self, input_ids: torch.Tensor) -> torch.Tensor:
        if not self.eos_token_ids:
            return torch.zeros_like(input_ids, dtype=torch.bool)
        return torch.isin(input_ids, torch.tensor(self.eos_token_ids))

    def _is_pad_target(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens the losses ignore as padding: ``pad_token_id``, unless it doubles as EOS (then EOS must be learnt)."""
        if self.pad_token_id in self.eos_token_ids:
            return torch.zeros_like(tokens, dtype=torch.bool)
        return tokens == self.pad_token_id

    def _replace_after_eos(
        self, input_ids: torch.Tensor, segments: SegmentMap, num_blocks: torch.Tensor
    ) -> torch.Tensor:
        """§4.5: in the last clean block only, every token after its first EOS becomes ``pad_token_id``."""
        last_clean = (segments.kind == CLEAN) & (segments.block == num_blocks[:, None] - 1)
        eos = self._is_eos(input_ids) & last_clean
        eos_before = eos.long().cumsum(dim=1) - eos.long()
        return input_ids.masked_fill(last_clean & (eos_before > 0), self.pad_token_id)

    def _ar_pairs(
        self, input_ids: torch.Tensor, segments: SegmentMap, num_blocks: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """§4.6: prompt pairs, bridges into every clean block, pairs inside each clean block up to its first EOS."""
        n = self.block_size
        positions = segments.index
        prompt_lengths = segments.prompt_lengths[:, None]
        kind, block, offset = segments.kind, segments.block, segments.offset

        target = torch.full_like(input_ids, -1)
        if self.include_prompt_in_ar:
            target = torch.where((kind == PROMPT) & (positions < prompt_lengths - 1), positions + 1, target)
        # bridges skip the noisy block in between: last prompt token -> L_0[0], last token of L_j -> L_{j+1}[0]
        last_of_clean = (kind == CLEAN) & (offset == n - 1) & (block < num_blocks[:, None] - 1)
        bridge = (positions == prompt_lengths - 1) | last_of_clean
        target = torch.where(bridge, positions + n + 1, target)
        # inside L_j: x -> x + 1 while no EOS has appeared in L_j at or before x
        eos_so_far = count_in_block(self._is_eos(input_ids) & (kind == CLEAN), segments.block_start)
        in_block = (kind == CLEAN) & (offset < n - 1) & (eos_so_far == 0)
        target = torch.where(in_block, positions + 1, target)

        rows, logit_positions = torch.nonzero(target >= 0, as_tuple=True)
        target_positions = target[rows, logit_positions]
        keep = ~self._is_pad_target(input_ids[rows, target_positions])
        rows, logit_positions, target_positions = rows[keep], logit_positions[keep], target_positions[keep]
        width = input_ids.shape[1]
        return {
            "ar_logit_index": rows * width + logit_positions,
            "ar_target_index": rows * width + target_positions,
            "ar_row_index": rows,
        }

    def _consistency_pairs(self, input_ids: torch.Tensor, segments: SegmentMap) -> dict[str, torch.Tensor]:
        """§4.7: noisy offsets from the first one where K_j differs from L_j, minus pad student tokens."""
        n = self.block_size
        noisy = segments.kind == NOISY
        partner = (segments.index + n).clamp(max=input_ids.shape[1] - 1)  # L_j + t for K_j + t
        differs = noisy & (input_ids != input_ids.gather(1, partner))
        kept = noisy & (count_in_block(differs, segments.block_start) > 0)
        if not self.keep_last_offset:
            kept &= segments.offset < n - 1
        kept &= ~self._is_pad_target(input_ids)
        rows, student = torch.nonzero(kept, as_tuple=True)
        width = input_ids.shape[1]
        return {
            "consistency_student_index": rows * width + student,
            "consistency_teacher_index": rows * width + student + n,
            "consistency_row_index": rows,
        }


@dataclass
class SegmentMap:
    """Per-position description of a padded batch of packed rows, all tensors of shape (B, L)."""

    index: torch.Tensor  # position inside the padded row
    kind: torch.Tensor  # PADDING / PROMPT / NOISY / CLEAN
    block: torch.Tensor  # j for positions of K_j or L_j, -1 elsewhere
    offset: torch.Tensor  # t for positions of K_j or L_j, -1 elsewhere
    block_start: torch.Tensor  # first position of the segment (K_j or L_j) holding the position, 0 elsewhere
    position_ids: torch.Tensor
    prompt_lengths: torch.Tensor  # (B,)

    @classmethod
    def build(
        cls, prompt_lengths: torch.Tensor, lengths: torch.Tensor, padded_length: int, block_size: int
    ) -> SegmentMap:
        n = block_size
        index = torch.arange(padded_length).expand(len(lengths), padded_length)
        prompt = prompt_lengths[:, None]
        in_row = index < lengths[:, None]
        in_prompt = index < prompt
        in_blocks = in_row & ~in_prompt
        relative = (index - prompt).clamp(min=0)
        slot = relative // n  # 2j for K_j, 2j + 1 for L_j
        kind = torch.where(in_prompt, PROMPT, torch.where(slot % 2 == 0, NOISY, CLEAN))
        kind = torch.where(in_row, kind, PADDING)
        block = torch.where(in_blocks, slot // 2, -1)
        offset = torch.where(in_blocks, relative % n, -1)
        block_start = torch.where(in_blocks, prompt + slot * n, 0)
        position_ids = torch.where(in_prompt, index, prompt + block * n + offset)
        position_ids = torch.where(in_row, position_ids, 0)
        return cls(index, kind, block, offset, block_start, position_ids, prompt_lengths)


def count_in_block(flags: torch.Tensor, block_start: torch.Tensor) -> torch.Tensor:
    """For each position x, how many flagged positions lie in ``[block_start[x], x]`` (its segment, up to x)."""
    cumulative = flags.long().cumsum(dim=1)
    before = cumulative.gather(1, (block_start - 1).clamp(min=0))
    before = torch.where(block_start > 0, before, 0)
    return cumulative - before


def attention_visibility(kind: torch.Tensor, block: torch.Tensor, attention_context: str) -> torch.Tensor:
    """Boolean (B, L, L) ``visible[b, q, k]`` following the segment rule of REFERENCE §4.4.

    Prompt queries are causal over the prompt; ``L_j`` sees the prompt, ``L_{<j}`` and ``L_j`` causally; ``K_j``
    sees the prompt, ``K_{<j}`` (noisy context) or ``L_{<j}`` (clean context) and ``K_j`` causally. No query sees
    the other stream otherwise; a padded query sees only itself, and no real query sees padding.
    """
    length = kind.shape[1]
    query_kind, key_kind = kind[:, :, None], kind[:, None, :]
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    visible = causal & ((key_kind == PROMPT) | (key_kind == query_kind)) & (query_kind != PADDING)
    if attention_context == "clean":
        query_block, key_block = block[:, :, None], block[:, None, :]
        clean_context = (
            (key_kind == PROMPT)
            | ((key_kind == CLEAN) & (key_block < query_block))
            | ((key_kind == NOISY) & (key_block == query_block) & causal)
        )
        visible = torch.where(query_kind == NOISY, clean_context, visible)
    return visible | (torch.eye(length, dtype=torch.bool) & (query_kind == PADDING))


def additive_mask(visible: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, L, L) boolean visibility -> (B, 1, L, L) additive mask: 0 where visible, ``finfo(dtype).min`` elsewhere."""
    mask = torch.zeros(visible.shape, dtype=dtype)
    return mask.masked_fill_(~visible, torch.finfo(dtype).min)[:, None]


def segment_labels(prompt_length: int, num_blocks: int, block_size: int) -> list[str]:
    """Human-readable names of the positions of one row: ``P0 … K0.0 … L0.0 …`` (as in REFERENCE §4.4)."""
    labels = [f"P{position}" for position in range(prompt_length)]
    for block in range(num_blocks):
        for stream in ("K", "L"):
            labels += [f"{stream}{block}.{offset}" for offset in range(block_size)]
    return labels


def plot_attention_mask(
    path: str | Path,
    *,
    prompt_length: int = 2,
    num_blocks: int = 2,
    block_size: int = 3,
    attention_contexts: Iterable[str] = ATTENTION_CONTEXTS,
) -> Path:
    """Draw the collator's attention mask of one row (one panel per attention context) into a PNG at ``path``.

    The defaults are the worked example of REFERENCE §4.4 (P=2, n=3, T=2).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    contexts = list(attention_contexts)
    colours = ListedColormap(["white", "#9e9e9e", "#f39c12", "#2e86de"])
    layout = RowLayout(prompt_length, num_blocks, block_size)
    labels = segment_labels(prompt_length, num_blocks, block_size)
    row = {"input_ids": list(range(1, layout.length + 1)), "prompt_length": prompt_length}
    size = 0.32 * layout.length + 1.5
    figure, axes = plt.subplots(1, len(contexts), figsize=(size * len(contexts), size), squeeze=False)
    for axis, context in zip(axes[0], contexts):
        collator = JacobiForcingDataCollator(block_size=block_size, pad_token_id=0, attention_context=context)
        visible = (collator([row])["attention_mask"][0, 0] == 0).int()
        kinds = SegmentMap.build(
            torch.tensor([prompt_length]), torch.tensor([layout.length]), layout.length, block_size
        ).kind[0]
        # colour a visible cell by the key's segment kind: prompt grey, noisy orange, clean blue
        picture = visible * kinds[None, :]
        axis.imshow(picture.numpy(), cmap=colours, vmin=0, vmax=3)
        axis.set_xticks(range(layout.length), labels, rotation=90, fontsize=7)
        axis.set_yticks(range(layout.length), labels, fontsize=7)
        axis.set_xticks([x - 0.5 for x in range(layout.length + 1)], minor=True)
        axis.set_yticks([y - 0.5 for y in range(layout.length + 1)], minor=True)
        axis.grid(which="minor", color="#dddddd", linewidth=0.5)
        axis.tick_params(which="minor", length=0)
        axis.set_xlabel("key")
        axis.set_ylabel("query")
        axis.set_title(f'attention_context="{context}"\nP={prompt_length}, n={block_size}, T={num_blocks}')
    legend = [
        Patch(color=colours(kind), label=name) for kind, name in ((1, "prompt"), (2, "noisy K_j"), (3, "clean L_j"))
    ]
    figure.legend(handles=legend, loc="lower center", ncol=3, title="visible key", bbox_to_anchor=(0.5, -0.02))
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)
    return path
