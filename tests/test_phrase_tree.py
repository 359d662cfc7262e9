"""NeMo's phrase-boosting tree against hand-computed scores, and the decoder's fused non-blank choice."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from stt.boost.tree import ROOT, Boost, PhraseTree, TreeOptions
from stt.decoding import DecoderState, greedy_tdt

LN2, LN3 = math.log(2), math.log(3)


def node(tree: PhraseTree, *path: int) -> int:
    state = ROOT
    for token in path:
        tokens, nodes = tree.children(state)
        state = int(nodes[list(tokens).index(token)])
    return state


@pytest.fixture
def tree() -> PhraseTree:
    # Shared prefix (1 2 3 / 1 4), and a phrase that is a suffix of another (2 3 inside 1 2 3).
    return PhraseTree([[1, 2, 3], [2, 3], [1, 4]])


def test_scores_fail_links_and_backoffs(tree: PhraseTree) -> None:
    n1, n12, n123, n2, n23, n14 = (node(tree, *p) for p in ([1], [1, 2], [1, 2, 3], [2], [2, 3], [1, 4]))
    assert len(tree) == 7
    assert tree.token_score[[n1, n12, n123]] == pytest.approx([1, 2 + LN2, 2 + LN3])
    assert tree.node_score[[n1, n12, n123, n2, n23, n14]] == pytest.approx(
        [1, 3 + LN2, 5 + LN2 + LN3, 1, 3 + LN2, 3 + LN2]
    )
    assert list(tree.is_end[[n1, n12, n123, n2, n23, n14]]) == [False, False, True, False, True, True]
    # Fail links: the longest proper suffix that is also a prefix in the tree.
    assert tree.fail[[n1, n12, n123, n2, n23, n14]].tolist() == [ROOT, n2, n23, ROOT, ROOT, ROOT]
    # Backoff: fail.node_score - node_score, and 0 where a phrase ends.
    assert tree.backoff[[n1, n12, n2]] == pytest.approx([-1, 1 - (3 + LN2), -1])
    assert tree.backoff[[n123, n23, n14]].tolist() == [0, 0, 0]


def test_arcs_walk_the_fail_chain(tree: PhraseTree) -> None:
    root = tree.arcs(ROOT)
    assert root.tokens.tolist() == [1, 2] and root.scores.tolist() == [1, 1] and root.default == 0
    assert root.next_state(7) == ROOT and root.next_state(2) == node(tree, 2)
    # Inside "1 2": finishing with 3 earns the phrase's next token score; anything else gives the partial
    # bonus back (the backoffs of "1 2" and of "2" on the way to the root).
    mid = tree.arcs(node(tree, 1, 2))
    taken_back = (1 - (3 + LN2)) + -1
    assert mid.tokens.tolist() == [1, 2, 3]
    assert mid.scores.tolist() == pytest.approx([taken_back + 1, taken_back + 1, 2 + LN3])
    assert mid.default == pytest.approx(taken_back)
    assert mid.next_state(3) == node(tree, 1, 2, 3) and mid.next_state(1) == node(tree, 1)
    # A finished phrase keeps its bonus: nothing is taken back after it.
    end = tree.arcs(node(tree, 1, 2, 3))
    assert end.default == 0 and end.tokens.tolist() == [1, 2]


def test_a_shared_node_keeps_the_larger_score_and_ends_where_any_phrase_ends() -> None:
    tree = PhraseTree([[5, 6, 7], [5, 6]], TreeOptions(context_score=1.0, depth_scaling=2.0))
    n56 = node(tree, 5, 6)
    assert tree.token_score[n56] == pytest.approx(2 + LN2) and tree.is_end[n56]
    louder = PhraseTree([[5, 6]], TreeOptions(context_score=3.0, depth_scaling=0.1))
    assert louder.token_score[node(louder, 5, 6)] == pytest.approx(0.3 + LN2)


def test_unknown_tokens_score_unk_score_and_empty_phrases_are_ignored() -> None:
    tree = PhraseTree([[], [3]], TreeOptions(unk_score=-0.5))
    assert tree.phrases == 1 and len(tree) == 2
    arcs = tree.arcs(ROOT)
    assert arcs.default == -0.5 and arcs.tokens.tolist() == [3] and arcs.scores.tolist() == [1.0]


BLANK = 4  # tokens 0..3, blank 4, durations 0..4
WIDTH = BLANK + 1 + 5


def row(scores: dict[int, float], duration: int = 1) -> npt.NDArray[np.float32]:
    values = np.full(WIDTH, -10.0, dtype=np.float32)
    for token, score in scores.items():
        values[token] = score
    values[BLANK + 1 + duration] = 5.0
    return values


class Joint:
    def __init__(self, rows: list[npt.NDArray[np.float32]]) -> None:
        self.rows = rows
        self.calls = 0

    def __call__(self, frame: int, last_token: int, state: int) -> tuple[npt.NDArray[np.float32], int]:
        self.calls += 1
        return self.rows[min(self.calls - 1, len(self.rows) - 1)], state + 1


def test_boosting_changes_only_the_non_blank_choice() -> None:
    # Frame 0: token 0 narrowly beats token 1; frame 1: blank wins over a boosted token; frame 2: token 2 vs 3.
    rows = [row({0: 3.0, 1: 2.5}), row({BLANK: 3.0, 1: 2.9}, duration=2), row({2: 2.0, 3: 1.9})]
    rows.append(row({BLANK: 9.0}))
    plain, _ = greedy_tdt(Joint(rows), 4, DecoderState(0, BLANK), blank_id=BLANK)
    assert plain.ids == [0, 2]
    boost = Boost(PhraseTree([[1, 3]]), alpha=1.0)
    hyp, end = greedy_tdt(Joint(rows), 4, DecoderState(0, BLANK), blank_id=BLANK, boost=boost)
    # "1" starts the phrase (+1 beats a 0.5 gap); the blank stays a blank; "3" completes it (+2+ln2).
    assert hyp.ids == [1, 3]
    assert hyp.frames == plain.frames and hyp.durations == plain.durations
    assert end.boost_state == node(boost.tree, 1, 3)
    # The tree state carries into the next call, as the LSTM state does.
    weak = Boost(boost.tree, alpha=0.1)
    hyp, _ = greedy_tdt(Joint(rows), 4, DecoderState(0, BLANK), blank_id=BLANK, boost=weak)
    assert hyp.ids == [0, 2]


def test_the_tree_state_advances_on_emitted_tokens_only() -> None:
    boost = Boost(PhraseTree([[1, 2]]), alpha=5.0)
    rows = [row({1: 1.0, 0: 1.5}), row({BLANK: 2.0}), row({2: 0.0, 0: 1.0})]
    hyp, end = greedy_tdt(Joint(rows), 3, DecoderState(0, BLANK), blank_id=BLANK, boost=boost)
    assert hyp.ids == [1, 2] and end.boost_state == node(boost.tree, 1, 2)
    start = DecoderState(0, BLANK, boost_state=node(boost.tree, 1))
    hyp, _ = greedy_tdt(Joint([rows[2]]), 1, start, blank_id=BLANK, boost=boost)
    assert hyp.ids == [2]
