"""NeMo's phrase-boosting tree: a trie over phrase token ids with Aho-Corasick fail links, its scores, and the
per-state arcs the greedy decoder fuses into its non-blank choice."""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

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


_TOKEN_BITS = 24
_TOKEN_MASK = (1 << _TOKEN_BITS) - 1


class _Trie:
    """The tree while it is built: flat arrays, and one dict from `parent << 24 | token` to the child."""

    def __init__(self) -> None:
        self.children: dict[int, int] = {}
        self.token_score = array("d", [0.0])
        self.node_score = array("d", [0.0])
        self.is_end = array("b", [0])
        self.depth = array("i", [0])

    def add(self, tokens: Sequence[int], context_score: float, depth_scaling: float) -> None:
        current = ROOT
        for depth, token in enumerate(tokens):
            if not 0 <= token <= _TOKEN_MASK:
                raise ValueError(f"token id {token} is out of range")
            key = current << _TOKEN_BITS | token
            child = self.children.get(key)
            last = depth == len(tokens) - 1
            if child is None:
                score = context_score if depth == 0 else context_score * depth_scaling + math.log(depth + 1)
                child = self.children[key] = len(self.depth)
                self.token_score.append(score)
                self.node_score.append(self.node_score[current] + score)
                self.is_end.append(int(last))
                self.depth.append(depth + 1)
            else:
                self.token_score[child] = max(context_score, self.token_score[child])
                self.node_score[child] = self.node_score[current] + self.token_score[child]
                self.is_end[child] = self.is_end[child] or int(last)
            current = child


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
        trie = _Trie()
        for index, tokens in enumerate(phrases):
            own = scores[index] if scores is not None else 0.0
            trie.add(tokens, own or self.options.context_score, self.options.depth_scaling)
        self.phrases = sum(1 for tokens in phrases if tokens)
        self.token_score = np.frombuffer(trie.token_score, dtype=np.float64).copy()
        self.node_score = np.frombuffer(trie.node_score, dtype=np.float64).copy()
        self.is_end = np.frombuffer(trie.is_end, dtype=np.int8).astype(bool)
        self.depth = np.frombuffer(trie.depth, dtype=np.int32).astype(np.int64)
        # Children as sorted (parent, token) pairs: node i's arcs are the slice starts[i]:starts[i + 1].
        keys = np.fromiter(trie.children.keys(), dtype=np.int64, count=len(trie.children))
        targets = np.fromiter(trie.children.values(), dtype=np.int64, count=len(trie.children))
        order = np.argsort(keys, kind="stable")
        keys, targets = keys[order], targets[order]
        parents = keys >> _TOKEN_BITS
        self._child_tokens: npt.NDArray[np.int64] = keys & _TOKEN_MASK
        self._child_nodes: npt.NDArray[np.int64] = targets
        self._child_start: npt.NDArray[np.int64] = np.searchsorted(parents, np.arange(len(self.depth) + 1))
        self.fail = self._fail_links(trie.children)
        self.backoff = np.where(self.is_end, 0.0, self.node_score[self.fail] - self.node_score)
        self.backoff[ROOT] = 0.0
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

    def _fail_links(self, children: dict[int, int]) -> npt.NDArray[np.int64]:
        """Aho-Corasick fail links, by increasing depth: the longest proper suffix that is also a prefix."""
        fail = np.zeros(len(self.depth), dtype=np.int64)
        for node in np.argsort(self.depth, kind="stable").tolist():
            tokens, kids = self.children(node)
            for token, child in zip(tokens.tolist(), kids.tolist(), strict=True):
                if node == ROOT:
                    continue  # a phrase's first node fails to the root
                target = int(fail[node])
                while (target << _TOKEN_BITS | token) not in children and target != ROOT:
                    target = int(fail[target])
                fail[child] = children.get(target << _TOKEN_BITS | token, ROOT)
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
