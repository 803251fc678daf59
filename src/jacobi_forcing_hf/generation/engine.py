"""The Jacobi engine: draft, verify in one forward, accept, keep the verified cache entries, repeat.

One iteration for every active row of the batch:

1. The query is ``pending ‖ tree``: the pending token (the last committed one, not cached yet; the whole prompt at
   prefill) followed by a trie of drafts: the Jacobi window (the rest of the current block, plus pseudo blocks
   under ``jacobi_mr``) and the recycled candidates.
2. One forward with a 4D tree mask gives the greedy prediction at every node.
3. Acceptance walks the trie from the root, following the child whose token equals the (processed) prediction of
   its parent; the last prediction on the walk is the exact correction token. Every committed token therefore is
   the greedy token of its exact prefix: the output equals greedy ``generate`` (lossless by construction).
4. The cache keeps the pending entries and the accepted path's entries (moved into place only when a candidate
   branch won), the rest is cropped. The next window holds the predictions along the continuation of the accepted
   path (Jacobi's update), extended by new blocks when due.

Rows advance by their own accepted lengths; a row that finishes is dropped from the batch.
"""

from __future__ import annotations

import inspect
import random
from dataclasses import dataclass, field

import torch
from transformers.generation.stopping_criteria import EosTokenCriteria, MaxLengthCriteria

from .config import JacobiConfig
from .hooks import JacobiHooks
from .kv_cache import check_cache_supported, keep_verified_entries, select_rows
from .multiblock import BlockLayout, newest_block_progress, plan_window_end
from .recycling import ContextIndex, RecyclingPool, select_candidates
from .stats import JacobiStats
from .tree import ROOT, DraftTree, build_verification_query


@dataclass
class RowState:
    """Decoding state of one row. ``tokens`` holds its unpadded prompt and every committed token."""

    batch_index: int
    pad_length: int
    prompt_length: int
    tokens: list[int]
    layout: BlockLayout
    limit: int
    context: ContextIndex
    pool: RecyclingPool
    rng: random.Random
    window: list[int] = field(default_factory=list)
    alternatives: list[int] = field(default_factory=list)
    stable: list[bool] = field(default_factory=list)
    output_length: int | None = None
    stop_block_end: int | None = None
    completed_blocks: int = 0
    done: bool = False

    @property
    def committed(self) -> int:
        return len(self.tokens)

    @property
    def window_end(self) -> int:
        return self.committed + len(self.window)

    @property
    def new_tokens(self) -> list[int]:
        generated = self.tokens[self.prompt_length :]
        return generated if self.output_length is None else generated[: self.output_length]


class StopRule:
    """Transformers' stopping criteria applied token by token, with a fast path for eos + max length."""

    def __init__(self, stopping_criteria, padded_prompt_length: int) -> None:
        self.criteria = stopping_criteria
        self.padded_prompt_length = padded_prompt_length
        kinds = {type(criterion) for criterion in stopping_criteria}
        self.fast = kinds <= {EosTokenCriteria, MaxLengthCriteria}
        self.eos: set[int] = set()
        self.max_length: int | None = None
        for criterion in stopping_criteria:
            if isinstance(criterion, EosTokenCriteria):
                self.eos |= set(criterion.eos_token_id.flatten().tolist())
            elif isinstance(criterion, MaxLengthCriteria):
                self.max_length = criterion.max_length

    def first_stop(self, row: RowState, new_tokens: list[int], pad_token_id: int) -> int | None:
        """Index in ``new_tokens`` of the token after which the row stops, or None."""
        generated = row.committed - row.prompt_length
        for index, token in enumerate(new_tokens):
            length = self.padded_prompt_length + generated + index + 1
            if self.fast:
                if token in self.eos or (self.max_length is not None and length >= self.max_length):
                    return index
            else:
                sequence = [pad_token_id] * row.pad_length + row.tokens + new_tokens[: index + 1]
                ids = torch.tensor([sequence], dtype=torch.long)
                if bool(self.criteria(ids, None)[0]):
                    return index
        return None


class JacobiEngine:
    """Runs Jacobi decoding of a batch on a model with a ``DynamicCache`` (see the module docstring)."""

    def __init__(
        self,
        model,
        config: JacobiConfig,
        *,
        logits_processor=None,
        stopping_criteria=None,
        pad_token_id: int = 0,
        streamer=None,
        hooks: JacobiHooks | None = None,
    ) -> None:
        self.model = model
        self.config = config
        self.logits_processor = logits_processor if logits_processor else None
        self.stopping_criteria = stopping_criteria if stopping_criteria is not None else []
        self.pad_token_id = pad_token_id
        self.streamer = streamer
        self.hooks = hooks or JacobiHooks()
        self.ngram_table = config.effective_ngram_table
        forward_parameters = _forward_parameters(model)
        self.cache_argument = "cache" if "cache" in forward_parameters else "past_key_values"
        self.supports_logits_to_keep = "logits_to_keep" in forward_parameters

    # ------------------------------------------------------------------ public entry
    def generate(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, cache, max_new_tokens: int
    ) -> tuple[torch.Tensor, JacobiStats]:
        """Decode ``input_ids`` (left padded) for at most ``max_new_tokens`` tokens; return sequences and stats."""
        cache = check_cache_supported(cache)
        batch_size, padded_length = input_ids.shape
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        stop_rule = StopRule(self.stopping_criteria, padded_length)
        rows = self._initial_rows(input_ids, attention_mask, max_new_tokens)
        stats = JacobiStats.for_rows(batch_size)
        finished_rows: list[RowState] = []
        self._streamed = 0
        if self.streamer is not None:
            self.streamer.put(input_ids.cpu())

        pending = input_ids.tolist()
        pending_valid = attention_mask.bool().tolist()
        pending_positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0).tolist()
        cache_valid = torch.zeros(batch_size, 0, dtype=torch.bool, device=input_ids.device)
        prefill = True
        while rows:
            trees = [self._draft_tree(row, use_drafts=not prefill or self.config.prefill_draft) for row in rows]
            for row in rows:
                self._report_block_state(row)
            query = build_verification_query(
                pending,
                pending_valid,
                pending_positions,
                trees,
                cache_valid,
                pad_token_id=self.pad_token_id,
                dtype=self.model.dtype,
                device=input_ids.device,
            )
            cache_length = cache_valid.shape[1]
            logits = self._forward(query, cache)
            stats.forwards += 1
            stats.query_tokens.append(query.query_length)

            predictions, ranked = self._predictions(logits)
            keep_paths: list[list[int]] = []
            for row_position, (row, tree) in enumerate(zip(rows, trees)):
                path, correction = self._accept(row, tree, predictions[row_position], logits[row_position])
                row_ranked = None if ranked is None else ranked[row_position]
                committed_now = self._commit(
                    row, tree, path, correction, predictions[row_position], row_ranked, stop_rule
                )
                stats.row_forwards[row.batch_index] += 1
                stats.committed_per_forward[row.batch_index].append(committed_now)
                keep_paths.append(path)

            cache_valid = self._keep_cache_entries(cache, cache_length, query, keep_paths, cache_valid, pending_valid)
            prefill = False
            if self.streamer is not None and batch_size == 1:
                self._stream(rows[0])
            finished = [row for row in rows if row.done]
            if finished:
                alive = [position for position, row in enumerate(rows) if not row.done]
                for row in finished:
                    stats.new_tokens[row.batch_index] = len(row.new_tokens)
                if alive:
                    index = torch.tensor(alive, device=input_ids.device)
                    select_rows(cache, index)
                    cache_valid = cache_valid[index]
                rows = [rows[position] for position in alive]
                finished_rows.extend(finished)
            pending = [[row.tokens[-1]] for row in rows]
            pending_valid = [[True] for _ in rows]
            pending_positions = [[row.committed - 1] for row in rows]

        if self.streamer is not None:
            self.streamer.end()
        return self._sequences(input_ids, finished_rows), stats

    # ------------------------------------------------------------------ set-up
    def _initial_rows(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int):
        config = self.config
        context_limit = _max_positions(self.model)
        rows = []
        for index, (ids, mask) in enumerate(zip(input_ids.tolist(), attention_mask.tolist())):
            pad_length = len(mask) - sum(mask)
            tokens = ids[pad_length:]
            if context_limit is not None and len(tokens) >= context_limit:
                raise ValueError(
                    f"row {index}: the prompt has {len(tokens)} tokens, at or past the model's context of "
                    f"{context_limit} positions (max_position_embeddings); shorten the prompt."
                )
            limit = len(tokens) + max_new_tokens
            if context_limit is not None:
                limit = min(limit, context_limit)
            context = ContextIndex(config.max_ngram_size)
            context.extend(tokens)
            row = RowState(
                batch_index=index,
                pad_length=pad_length,
                prompt_length=len(tokens),
                tokens=list(tokens),
                layout=BlockLayout(len(tokens), config.block_size),
                limit=limit,
                context=context,
                pool=RecyclingPool(config.recycle_capacity, config.max_ngram_size),
                rng=random.Random(config.draft_seed * 1_000_003 + index),
            )
            if config.prefill_draft:
                row.window = self._initial_tokens(row, [], min(row.layout.end(0), limit) - row.committed)
            rows.append(row)
        return rows

    # ------------------------------------------------------------------ one iteration
    def _draft_tree(self, row: RowState, *, use_drafts: bool) -> DraftTree:
        if not use_drafts:
            return DraftTree()
        candidates: list[list[int]] = []
        pool_size = self.config.effective_pool_size
        room = row.limit - row.committed
        if pool_size and room > 0:
            length = min(self.config.effective_candidate_length, room)
            copy_length = min(self.config.effective_copy_length, room)
            key = row.tokens[-self.config.max_ngram_size :]
            proposals = row.context.continuations(key, length, copy_length=copy_length)
            proposals += row.pool.continuations(row.tokens, length)
            if self.ngram_table is not None:  # after the call's own text: the sort keeps that order within a rank
                proposals += self.ngram_table.continuations(row.tokens[-self.ngram_table.max_ngram_size :], length)
            candidates = select_candidates(proposals, row.window, pool_size)
        # one-token branches: the draft tokens after a runner-up were predicted behind the rejected token too
        branches = [[token] for token in row.alternatives] if row.window else []
        return DraftTree.build(row.window, candidates + branches)

    def _predictions(self, logits: torch.Tensor) -> tuple[list[list[int]], list[list[list[int]]] | None]:
        """Greedy token of every node, and, when ``draft_alternatives`` asks for them, every node's ranked tokens
        (the greedy one first, then the top ``k + 1``), in the one host transfer of the iteration.

        The greedy token is ``argmax`` as in ``generate`` (``topk`` may break ties otherwise).
        """
        greedy = logits.argmax(-1, keepdim=True)
        count = self.config.effective_draft_alternatives
        if not count:
            return greedy[..., 0].tolist(), None
        ranked = torch.cat([greedy, logits.topk(count + 1, dim=-1).indices], dim=-1).tolist()
        return [[node[0] for node in row] for row in ranked], ranked

    def _forward(self, query, cache) -> torch.Tensor:
        kwargs = {
            "input_ids": query.input_ids,
            "position_ids": query.position_ids,
            "attention_mask": query.attention_mask,
            self.cache_argument: cache,
            "use_cache": True,
            "return_dict": True,
        }
        if self.supports_logits_to_keep:
            return self.model(**kwargs, logits_to_keep=query.logits_index).logits
        logits = self.model(**kwargs).logits
        return logits.gather(1, query.logits_index[..., None].expand(-1, -1, logits.shape[-1]))

    def _accept(self, row: RowState, tree: DraftTree, predictions: list[int], logits: torch.Tensor):
        """Walk the trie along verified tokens; return the accepted node path and the correction token."""
        path: list[int] = []
        node = ROOT
        while True:
            if self.logits_processor is None:
                token = predictions[node + 1]
            else:
                sequence = [self.pad_token_id] * row.pad_length + row.tokens + [tree.tokens[n] for n in path]
                ids = torch.tensor([sequence], dtype=torch.long, device=logits.device)
                scores = self.logits_processor(ids, logits[node + 1][None].float())
                token = int(scores.argmax(-1))
            child = tree.child(node, token)
            if child is None:
                return path, token
            path.append(child)
            node = child

    def _commit(
        self,
        row: RowState,
        tree: DraftTree,
        path: list[int],
        correction: int,
        predictions: list[int],
        ranked: list[list[int]] | None,
        stop_rule: StopRule,
    ) -> int:
        """Append the accepted tokens and the correction; apply stopping; build the next window."""
        new_tokens = [tree.tokens[node] for node in path] + [correction]
        if row.output_length is None:
            stop = stop_rule.first_stop(row, new_tokens, self.pad_token_id)
            if stop is not None:
                stop_position = row.committed + stop
                row.output_length = stop_position + 1 - row.prompt_length
                if self.config.finish_block_on_stop:
                    row.stop_block_end = row.layout.end(row.layout.index_of(stop_position))
                else:
                    new_tokens = new_tokens[: stop + 1]
                    row.done = True
        committed_before, old_window = row.committed, row.window
        output_before = len(row.new_tokens)
        row.tokens.extend(new_tokens)
        row.context.extend(new_tokens)
        self._report_completed_blocks(row)
        if row.stop_block_end is not None and row.committed >= row.stop_block_end:
            row.done = True
        if row.done:
            return len(row.new_tokens) - output_before
        if self.config.effective_pool_size:
            row.pool.add(old_window[len(path) :])
        self._next_window(row, tree, path, predictions, ranked, committed_before, old_window)
        return len(row.new_tokens) - output_before

    def _next_window(
        self,
        row: RowState,
        tree: DraftTree,
        path: list[int],
        predictions: list[int],
        ranked: list[list[int]] | None,
        committed_before: int,
        old_window: list[int],
    ) -> None:
        """Jacobi update: each position takes the prediction made at the position before it."""
        old_end = committed_before + len(old_window)
        chain = tree.first_chain(path[-1] if path else ROOT)
        guesses: list[int] = []
        stable: list[bool] = []
        row.alternatives = []
        for position in range(row.committed, old_end + 1):
            chain_offset = position - row.committed
            draft_offset = position - 1 - committed_before
            if chain_offset < len(chain):
                node = chain[chain_offset]
            elif 0 <= draft_offset < len(old_window):
                node = draft_offset  # the draft chain's nodes are 0 .. len(window) - 1
            else:
                break
            guess = predictions[node + 1]
            if not guesses:
                row.alternatives = self._runners_up(ranked, node)
            guesses.append(guess)
            stable.append(position < old_end and guess == old_window[position - committed_before])
        progress = newest_block_progress(row.layout, row.committed, max(old_end, row.committed), stable)
        config = self.config
        new_end = plan_window_end(
            row.layout,
            row.committed,
            max(old_end, row.committed),
            progress,
            num_blocks=config.effective_num_blocks,
            spawn_threshold=config.spawn_threshold,
            limit=row.limit,
        )
        length = max(new_end - row.committed, 0)
        window = guesses[:length]
        row.window = window + self._initial_tokens(row, window, length - len(window))
        row.stable = stable[:length] + [False] * (length - len(stable[:length]))

    def _runners_up(self, ranked: list[list[int]] | None, node: int) -> list[int]:
        """The ``draft_alternatives`` best tokens after the greedy one at ``node`` (none without ranking)."""
        if ranked is None:
            return []
        greedy, *others = ranked[node + 1]
        return [token for token in others if token != greedy][: self.config.effective_draft_alternatives]

    def _initial_tokens(self, row: RowState, window: list[int], count: int) -> list[int]:
        """Tokens for ``count`` newly opened positions after ``tokens ‖ window``."""
        if count <= 0:
            return []
        if self.config.draft_init == "repeat_last":
            return [window[-1] if window else row.tokens[-1]] * count
        tokens: list[int] = []
        if self.config.draft_init == "lookup":
            key = (row.tokens + window)[-self.config.max_ngram_size :]
            found = row.context.continuations(key, count)
            if found:
                tokens = found[0][1]
        return tokens + [row.rng.choice(row.tokens) for _ in range(count - len(tokens))]

    def _keep_cache_entries(self, cache, cache_length, query, paths, cache_valid, pending_valid) -> torch.Tensor:
        pending_length = query.pending_length
        kept_lengths = [pending_length + len(path) for path in paths]
        kept = max(kept_lengths)
        in_place = all(path == list(range(len(path))) for path in paths)
        keep_index = None
        if not in_place:
            keep_index = torch.tensor(
                [
                    list(range(pending_length))
                    + [pending_length + node for node in path]
                    + [pending_length] * (kept - pending_length - len(path))
                    for path in paths
                ],
                device=cache_valid.device,
            )
        keep_verified_entries(cache, cache_length, added=query.query_length, kept=kept, keep_index=keep_index)
        new_valid = [
            valid[:pending_length] + [True] * len(path) + [False] * (kept - pending_length - len(path))
            for valid, path in zip(pending_valid, paths)
        ]
        return torch.cat([cache_valid, torch.tensor(new_valid, dtype=torch.bool, device=cache_valid.device)], dim=1)

    # ------------------------------------------------------------------ hooks, streaming, output
    def _report_block_state(self, row: RowState) -> None:
        block = row.layout.index_of(row.committed)
        start, end = row.layout.start(block), row.layout.end(block)
        state = row.tokens[start:] + row.window[: end - row.committed]
        if len(state) == row.layout.block_size:
            self.hooks.on_block_state(row.batch_index, block, start, state)

    def _report_completed_blocks(self, row: RowState) -> None:
        while row.layout.end(row.completed_blocks) <= row.committed:
            start, end = row.layout.start(row.completed_blocks), row.layout.end(row.completed_blocks)
            self.hooks.on_block_complete(row.batch_index, row.completed_blocks, start, row.tokens[start:end])
            row.completed_blocks += 1

    def _stream(self, row: RowState) -> None:
        new_tokens = row.new_tokens
        if len(new_tokens) > self._streamed:
            self.streamer.put(torch.tensor(new_tokens[self._streamed :], dtype=torch.long))
        self._streamed = len(new_tokens)

    def _sequences(self, input_ids: torch.Tensor, finished_rows: list[RowState]) -> torch.Tensor:
        rows = sorted(finished_rows, key=lambda row: row.batch_index)
        longest = max(len(row.new_tokens) for row in rows)
        generated = [row.new_tokens + [self.pad_token_id] * (longest - len(row.new_tokens)) for row in rows]
        tail = torch.tensor(generated, dtype=input_ids.dtype, device=input_ids.device).reshape(len(rows), longest)
        return torch.cat([input_ids, tail], dim=1)


def _forward_parameters(model) -> set[str]:
    return set(inspect.signature(model.forward).parameters)


def _max_positions(model) -> int | None:
    config = model.config.get_text_config(decoder=True) if hasattr(model.config, "get_text_config") else model.config
    return getattr(config, "max_position_embeddings", None)
