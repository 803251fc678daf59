"""One forward verifies a tree: the Jacobi draft and the recycled candidates as branches of a token trie.

The trie is rooted at the pending token (the last committed token, whose key/value is not cached yet). The draft is
its first chain; each candidate adds the nodes it does not share with what is already there. All nodes are fed in one
query with a 4D attention mask in which a node sees the valid cache, the pending tokens and its own ancestors, at the
position ``root_position + depth``: branches share positions, as in tree attention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

ROOT = -1


@dataclass
class DraftTree:
    """A token trie below the pending token. Node ids are 0.. in creation order; ``ROOT`` is the pending token."""

    tokens: list[int] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    depths: list[int] = field(default_factory=list)
    _children: dict[int, dict[int, int]] = field(default_factory=dict)

    @classmethod
    def build(cls, draft: list[int], candidates: list[list[int]]) -> DraftTree:
        tree = cls()
        for branch in (draft, *candidates):
            tree.insert(branch)
        return tree

    def insert(self, branch: list[int]) -> None:
        node = ROOT
        for token in branch:
            child = self.child(node, token)
            if child is None:
                child = len(self.tokens)
                self.tokens.append(token)
                self.parents.append(node)
                self.depths.append(1 if node == ROOT else self.depths[node] + 1)
                self._children.setdefault(node, {})[token] = child
            node = child

    def __len__(self) -> int:
        return len(self.tokens)

    def child(self, node: int, token: int) -> int | None:
        """The child of ``node`` that carries ``token``, if any."""
        return self._children.get(node, {}).get(token)

    def first_chain(self, node: int) -> list[int]:
        """Nodes below ``node`` following first-created children (the draft chain where it exists)."""
        chain = []
        while self._children.get(node):
            node = next(iter(self._children[node].values()))
            chain.append(node)
        return chain

    def path_to(self, node: int) -> list[int]:
        """Nodes from the root's child down to ``node``."""
        path = []
        while node != ROOT:
            path.append(node)
            node = self.parents[node]
        return path[::-1]


@dataclass
class VerificationQuery:
    """Model inputs of one verification forward, and where each row's tree lives in it."""

    input_ids: torch.Tensor  # (B, q)
    position_ids: torch.Tensor  # (B, q)
    attention_mask: torch.Tensor  # (B, 1, q, cache_length + q), additive
    logits_index: torch.Tensor  # (B, 1 + max tree size): the root, then tree nodes, in node order
    pending_length: int

    @property
    def query_length(self) -> int:
        return self.input_ids.shape[1]


def build_verification_query(
    pending: list[list[int]],
    pending_valid: list[list[bool]],
    pending_positions: list[list[int]],
    trees: list[DraftTree],
    cache_valid: torch.Tensor,
    *,
    pad_token_id: int,
    dtype: torch.dtype,
    device: torch.device,
) -> VerificationQuery:
    """Lay out ``pending ‖ tree`` for every row and build the additive 4D mask over ``cache ‖ query``.

    ``pending`` rows all have the same length (the left-padded prompt at prefill, one token afterwards);
    ``cache_valid`` (B, cache_length) marks the cache slots each row may attend to.
    """
    batch_size, pending_length = len(pending), len(pending[0])
    tree_length = max(len(tree) for tree in trees)
    root_positions = [positions[-1] for positions in pending_positions]
    ids, positions, valid, parents = [], [], [], []
    for row, tree in enumerate(trees):
        filler = tree_length - len(tree)
        ids.append(pending[row] + tree.tokens + [pad_token_id] * filler)
        positions.append(pending_positions[row] + [root_positions[row] + d for d in tree.depths] + [0] * filler)
        valid.append(pending_valid[row] + [True] * len(tree) + [False] * filler)
        parents.append(tree.parents + [ROOT] * filler)

    input_ids = torch.tensor(ids, dtype=torch.long, device=device)
    position_ids = torch.tensor(positions, dtype=torch.long, device=device)
    node_valid = torch.tensor(valid, dtype=torch.bool, device=device)
    query_length = pending_length + tree_length

    visible = torch.zeros(batch_size, query_length, query_length, dtype=torch.bool, device=device)
    causal = torch.ones(pending_length, pending_length, dtype=torch.bool, device=device).tril()
    visible[:, :pending_length, :pending_length] = causal & node_valid[:, None, :pending_length]
    visible[:, pending_length:, :pending_length] = node_valid[:, None, :pending_length]
    if tree_length:
        visible[:, pending_length:, pending_length:] = _ancestor_closure(parents, trees, device)
    visible |= torch.eye(query_length, dtype=torch.bool, device=device)  # padding attends to itself: no NaN

    full = torch.cat([cache_valid[:, None, :].expand(-1, query_length, -1), visible], dim=-1)
    attention_mask = torch.zeros(full.shape, dtype=dtype, device=device)
    attention_mask.masked_fill_(~full, torch.finfo(dtype).min)

    root_index = pending_length - 1
    logits_index = torch.tensor(
        [
            [root_index] + [pending_length + i for i in range(len(tree))] + [root_index] * (tree_length - len(tree))
            for tree in trees
        ],
        dtype=torch.long,
        device=device,
    )
    return VerificationQuery(input_ids, position_ids, attention_mask[:, None], logits_index, pending_length)


def _ancestor_closure(parents: list[list[int]], trees: list[DraftTree], device: torch.device) -> torch.Tensor:
    """(B, T, T) bool: node i sees node j iff j is i or one of its ancestors; by repeated squaring."""
    batch_size, tree_length = len(parents), len(parents[0])
    reach = torch.eye(tree_length, device=device).repeat(batch_size, 1, 1)
    rows = [(b, i, p) for b, row in enumerate(parents) for i, p in enumerate(row) if p != ROOT]
    if rows:
        index = torch.tensor(rows, dtype=torch.long, device=device)
        reach[index[:, 0], index[:, 1], index[:, 2]] = 1.0
    max_depth = max((max(tree.depths, default=0) for tree in trees), default=0)
    for _ in range(math.ceil(math.log2(max(max_depth, 1))) + 1):
        reach = (reach @ reach).clamp_(max=1.0)
    return reach.bool()
