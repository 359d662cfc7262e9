"""NeMo's phrase-boosting tree: a trie over phrase token ids with Aho-Corasick fail links, its scores, and the
per-state arcs the greedy decoder fuses into its non-blank choice."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

ROOT = 0


@dataclass(frozen=True)
class TreeOptions:
    """NeMo's boosting-tree settings (`boosting_tree` in its greedy decoding config), with its defaults."""

    context_score: float = 1.0
    """Score of a phrase's first token; later tokens get `context_score * depth_scaling + ln(depth + 1)`."""
    depth_scaling: float = 2.0
    unk_score: float = 0.0
    """Score of a token that neither continues nor starts a phrase."""


@dataclass(frozen=True)
class StateArcs:
    """Where each token leads from one tree state: `tokens` (sorted) with their `scores` and `targets`; every
    other token scores `default` and returns to the root."""

    tokens: npt.NDArray[np.int64]
    scores: npt.NDArray[np.float32]
    targets: npt.NDArray[np.int64]
    default: float

    def next_state(self, token: int) -> int:
        """The state after emitting `token`."""
        at = int(np.searchsorted(self.tokens, token))
        return int(self.targets[at]) if at < len(self.tokens) and self.tokens[at] == token else ROOT


@dataclass
class _Node:
    token_score: float
    node_score: float
    depth: int
    is_end: bool = False
    children: dict[int, int] = field(default_factory=dict)


class PhraseTree:
    """The tree of NeMo's GPU phrase boosting, built from phrases' token ids.

    A new node at depth i scores `context_score` (i = 0) or `context_score * depth_scaling + ln(i + 1)`; a node
    shared by several phrases keeps `max(context_score, its score)`; a node's `node_score` is its path's sum.
    Each node's backoff weight is `fail.node_score - node_score`, or 0 for a node where a phrase ends, so a
    finished phrase keeps its bonus. `arcs(state)` walks the fail chain from `state` to the root, adding the
    backoff weights it leaves, and takes each token's arc from the first state that has one; the root has an
    arc for every token (to a phrase's first node, or to itself with `unk_score`).
    """

    def __init__(
        self,
        phrases: Sequence[Sequence[int]],
        options: TreeOptions | None = None,
        scores: Sequence[float] | None = None,
    ) -> None:
        """`scores` gives a phrase its own context score (0: the options' one), as NeMo's `score_per_phrase`."""
        self.options = options or TreeOptions()
        nodes = [_Node(0.0, 0.0, 0)]
        for index, tokens in enumerate(phrases):
            own = scores[index] if scores is not None else 0.0
            self._add(nodes, tokens, own or self.options.context_score)
        self.phrases = sum(1 for tokens in phrases if tokens)
        fail = self._fail_links(nodes)
        count = len(nodes)
        self.fail: npt.NDArray[np.int64] = np.asarray(fail, dtype=np.int64)
        self.token_score = np.array([n.token_score for n in nodes], dtype=np.float64)
        self.node_score = np.array([n.node_score for n in nodes], dtype=np.float64)
        self.is_end = np.array([n.is_end for n in nodes], dtype=bool)
        self.depth = np.array([n.depth for n in nodes], dtype=np.int64)
        self.backoff = np.where(self.is_end, 0.0, self.node_score[self.fail] - self.node_score)
        self.backoff[ROOT] = 0.0
        starts = np.zeros(count + 1, dtype=np.int64)
        for index, node in enumerate(nodes):
            starts[index + 1] = starts[index] + len(node.children)
        self._child_start = starts
        self._child_tokens = np.empty(int(starts[-1]), dtype=np.int64)
        self._child_nodes = np.empty(int(starts[-1]), dtype=np.int64)
        for index, node in enumerate(nodes):
            ordered = sorted(node.children.items())
            lo = int(starts[index])
            self._child_tokens[lo : lo + len(ordered)] = [t for t, _ in ordered]
            self._child_nodes[lo : lo + len(ordered)] = [c for _, c in ordered]
        self._arcs: dict[int, StateArcs] = {}

    def __len__(self) -> int:
        """Number of states, the root included."""
        return len(self.fail)

    @property
    def nbytes(self) -> int:
        """Memory held by the compiled arrays."""
        arrays = (self.fail, self.token_score, self.node_score, self.is_end, self.depth, self.backoff)
        extra = self._child_start.nbytes + self._child_tokens.nbytes + self._child_nodes.nbytes
        return sum(a.nbytes for a in arrays) + extra

    def children(self, state: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The tokens that continue a phrase from `state`, and the states they lead to."""
        lo, hi = int(self._child_start[state]), int(self._child_start[state + 1])
        return self._child_tokens[lo:hi], self._child_nodes[lo:hi]

    def arcs(self, state: int) -> StateArcs:
        """Scores and next states of every token from `state` (cached per state)."""
        found = self._arcs.get(state)
        if found is None:
            found = self._arcs[state] = self._compute_arcs(state)
        return found

    def _compute_arcs(self, state: int) -> StateArcs:
        tokens: dict[int, tuple[float, int]] = {}
        backoff = 0.0
        current = state
        while True:
            child_tokens, child_nodes = self.children(current)
            for token, child in zip(child_tokens.tolist(), child_nodes.tolist(), strict=True):
                if token not in tokens:
                    tokens[token] = (backoff + float(self.token_score[child]), child)
            if current == ROOT:
                break
            backoff += float(self.backoff[current])
            current = int(self.fail[current])
        ordered = sorted(tokens.items())
        return StateArcs(
            np.array([t for t, _ in ordered], dtype=np.int64),
            np.array([s for _, (s, _) in ordered], dtype=np.float32),
            np.array([n for _, (_, n) in ordered], dtype=np.int64),
            backoff + self.options.unk_score,
        )

    def _add(self, nodes: list[_Node], tokens: Sequence[int], context_score: float) -> None:
        current = ROOT
        for depth, token in enumerate(tokens):
            child = nodes[current].children.get(token)
            last = depth == len(tokens) - 1
            if child is None:
                score = context_score
                if depth > 0:
                    score = context_score * self.options.depth_scaling + math.log(depth + 1)
                child = len(nodes)
                nodes.append(_Node(score, nodes[current].node_score + score, depth + 1, last))
                nodes[current].children[token] = child
            else:
                node = nodes[child]
                node.token_score = max(context_score, node.token_score)
                node.node_score = nodes[current].node_score + node.token_score
                node.is_end = node.is_end or last
            current = child

    @staticmethod
    def _fail_links(nodes: list[_Node]) -> list[int]:
        fail = [ROOT] * len(nodes)
        queue: deque[int] = deque(nodes[ROOT].children.values())
        while queue:
            current = queue.popleft()
            for token, child in nodes[current].children.items():
                target = fail[current]
                while token not in nodes[target].children and target != ROOT:
                    target = fail[target]
                fail[child] = nodes[target].children.get(token, ROOT)
                queue.append(child)
        return fail


@dataclass(frozen=True)
class Boost:
    """A phrase tree and its strength α, as the decoder takes it."""

    tree: PhraseTree
    alpha: float

    def choose(self, token_logits: npt.NDArray[np.float32], state: int) -> int:
        """The non-blank token with the best `logit + α · score` from `state` (`token_logits` excludes blank)."""
        arcs = self.tree.arcs(state)
        alpha = np.float32(self.alpha)
        boosted = token_logits + alpha * np.float32(arcs.default)
        if len(arcs.tokens):
            boosted[arcs.tokens] = token_logits[arcs.tokens] + alpha * arcs.scores
        return int(boosted.argmax())
