"""Text similarity, convergence tiers and vote-choice merging: pure functions, no model."""

from __future__ import annotations

import importlib.machinery
import math
import sys
import types
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aragora.orchestrator import similarity as sim
from aragora.orchestrator.similarity import (
    Convergence,
    measure_convergence,
    merge_choices,
    similarity,
)

METHODS: tuple[sim.Method, ...] = ("tfidf", "jaccard")
WORDS = ["alpha", "beta", "gamma", "delta", "the", "not", "Ünïcode", "x1", "tax", "cut"]
texts = st.lists(st.sampled_from(WORDS), max_size=8).map(" ".join)
any_text = st.text(max_size=40)


def words(*numbers: int) -> str:
    return " ".join(f"w{n}" for n in numbers)


@pytest.fixture(autouse=True)
def _no_embeddings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(sim.EMBEDDINGS_MODEL_ENV, raising=False)
    sim._load_model.cache_clear()
    yield
    sim._load_model.cache_clear()


# --- similarity -----------------------------------------------------------------------------


@settings(max_examples=200)
@given(a=any_text | texts, b=any_text | texts, corpus=st.lists(texts, max_size=4))
def test_similarity_is_symmetric_and_bounded(a: str, b: str, corpus: list[str]) -> None:
    for method in METHODS:
        ab = similarity(a, b, method, corpus)
        assert ab == similarity(b, a, method, corpus)
        assert 0.0 <= ab <= 1.0


@given(a=any_text | texts, corpus=st.lists(texts, max_size=4))
def test_identical_texts_are_exactly_one(a: str, corpus: list[str]) -> None:
    for method in METHODS:
        assert similarity(a, a, method, corpus) == 1.0


@pytest.mark.parametrize("method", METHODS)
def test_texts_without_tokens(method: sim.Method) -> None:
    assert similarity("", "", method) == 1.0
    assert similarity("the", "...", method) == 1.0  # both token-less after stopwords
    assert similarity("cats", "", method) == 0.0
    assert similarity("", "the cats", method) == 0.0


@pytest.mark.parametrize("method", METHODS)
def test_case_punctuation_and_stopwords_do_not_matter(method: sim.Method) -> None:
    assert similarity("The cats sleep.", "cats, SLEEP", method) == 1.0


@pytest.mark.parametrize("method", METHODS)
def test_disjoint_texts_are_zero(method: sim.Method) -> None:
    assert similarity("raise taxes", "plant trees", method) == 0.0


def test_negation_is_not_a_stopword() -> None:
    assert similarity("good idea", "not good idea", "jaccard") == pytest.approx(2 / 3)


def test_jaccard_is_set_overlap() -> None:
    assert similarity("red green blue", "red green yellow", "jaccard") == 0.5
    assert similarity("red red green", "red green green", "jaccard") == 1.0


def test_tfidf_matches_the_formula() -> None:
    # N = 2 documents (the pair): "apple" df=2 -> idf 1; the others df=1 -> ln(3/2) + 1.
    rare = math.log(3 / 2) + 1
    assert similarity("apple banana", "apple cherry", "tfidf") == pytest.approx(1 / (1 + rare**2))


def test_tfidf_corpus_discounts_common_words() -> None:
    alone = similarity("apple banana", "apple cherry")
    common = similarity("apple banana", "apple cherry", corpus=["apple pie", "apple tree"] * 5)
    assert common < alone


def test_unknown_method_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown similarity method"):
        similarity("a", "b", "cosine")  # type: ignore[arg-type]


# --- embeddings (optional, never downloaded) ------------------------------------------------


def test_without_a_configured_model_tfidf_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sim.available_method() == "tfidf"
    monkeypatch.setenv(sim.EMBEDDINGS_MODEL_ENV, "/nonexistent/model")
    assert sim.available_method() == "tfidf"  # not installed here, or not loadable offline
    a, b = "apple banana", "apple cherry"
    assert similarity(a, b, "embeddings") == similarity(a, b, "tfidf")
    assert measure_convergence({"x": a}, {"x": b}, method="embeddings").method == "tfidf"


def test_a_local_model_is_used_when_loadable(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[tuple[str, dict[str, object]]] = []

    class FakeModel:
        """Embeds a text as its normalised vowel counts: enough to exercise the path."""

        def __init__(self, name: str, **kwargs: object) -> None:
            loads.append((name, kwargs))

        def encode(self, batch: Sequence[str], normalize_embeddings: bool) -> list[list[float]]:
            assert normalize_embeddings
            out = []
            for text in batch:
                v = [float(text.count(c)) + 0.1 for c in "aeiou"]
                norm = math.sqrt(sum(x * x for x in v))
                out.append([x / norm for x in v])
            return out

    fake = types.ModuleType("sentence_transformers")
    fake.__spec__ = importlib.machinery.ModuleSpec("sentence_transformers", None)
    fake.SentenceTransformer = FakeModel  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake)
    monkeypatch.setenv(sim.EMBEDDINGS_MODEL_ENV, "local-model")

    assert sim.available_method() == "embeddings"
    assert loads == [("local-model", {"local_files_only": True})]
    score = similarity("banana", "apple pie", "embeddings")
    assert 0.0 < score < 1.0
    assert score == similarity("apple pie", "banana", "embeddings")
    assert similarity("banana", "banana", "embeddings") == 1.0
    assert measure_convergence({"x": "a"}, {"x": "a"}, method="embeddings").method == "embeddings"
    assert len(loads) == 1  # loaded once per process


# --- convergence ----------------------------------------------------------------------------


def test_no_common_agents_has_no_status() -> None:
    result = measure_convergence({"a": "x"}, {"b": "x"})
    assert result == Convergence(method="tfidf", similarities={}, min_similarity=None, status=None)


@pytest.mark.parametrize(
    ("kept", "expected_min", "status"),
    [
        (20, 1.0, "converged"),
        (17, 0.85, "converged"),  # exactly at converged_at
        (16, 0.8, "refining"),
        (8, 0.4, "refining"),  # exactly at diverging_below
        (7, 0.35, "diverging"),
        (0, 0.0, "diverging"),
    ],
)
def test_status_tiers_at_the_boundaries(kept: int, expected_min: float, status: str) -> None:
    # Jaccard of w1..w20 against w1..w<kept> is kept/20: exact tier boundaries.
    previous = {"a": words(*range(1, 21))}
    current = {"a": words(*range(1, kept + 1)) or "the"}
    result = measure_convergence(previous, current, method="jaccard")
    assert result.min_similarity == expected_min
    assert result.status == status


def test_the_least_converged_agent_decides() -> None:
    previous = {"a": "raise taxes now", "b": "plant more trees", "gone": "x"}
    current = {"a": "raise taxes now", "b": "build a railway", "new": "y"}
    result = measure_convergence(previous, current)
    assert result.similarities == {"a": 1.0, "b": 0.0}
    assert result.min_similarity == 0.0
    assert result.status == "diverging"


def test_each_agent_is_compared_with_its_own_previous_text() -> None:
    previous = {"a": "alpha beta", "b": "gamma delta"}
    current = {"a": "gamma delta", "b": "alpha beta"}  # swapped: nobody kept a position
    assert measure_convergence(previous, current).status == "diverging"


def test_similarities_use_both_rounds_as_corpus_and_four_decimals() -> None:
    previous = {"a": "raise taxes on carbon", "b": "cut taxes on income"}
    current = {"a": "raise carbon taxes gradually", "b": "cut income taxes and spending"}
    corpus = [*previous.values(), *current.values()]
    result = measure_convergence(previous, current)
    for agent in ("a", "b"):
        raw = similarity(previous[agent], current[agent], "tfidf", corpus)
        assert result.similarities[agent] == round(raw, 4)


@given(
    previous=st.dictionaries(st.sampled_from("abcd"), texts, max_size=4),
    current=st.dictionaries(st.sampled_from("abcd"), texts, max_size=4),
    converged_at=st.floats(0.5, 1.0),
    diverging_below=st.floats(0.0, 0.5),
)
def test_status_follows_the_minimum(
    previous: dict[str, str],
    current: dict[str, str],
    converged_at: float,
    diverging_below: float,
) -> None:
    result = measure_convergence(
        previous, current, converged_at=converged_at, diverging_below=diverging_below
    )
    assert set(result.similarities) == previous.keys() & current.keys()
    low = result.min_similarity
    if low is None:
        assert result.status is None
        return
    assert low == min(result.similarities.values())
    expected = (
        "converged"
        if low >= converged_at
        else "refining"
        if low >= diverging_below
        else "diverging"
    )
    assert result.status == expected


# --- merging vote choices -------------------------------------------------------------------


def test_near_identical_answers_merge_into_the_earliest() -> None:
    answers = {
        "a": "We should raise the carbon tax.",
        "b": "Plant more trees instead.",
        "c": "we should RAISE the carbon tax",
    }
    assert merge_choices(["a", "b", "c"], answers) == {"a": "a", "b": "b", "c": "a"}
    assert merge_choices(["c", "b", "a"], answers) == {"c": "c", "b": "b", "a": "c"}


def test_candidates_without_answers_map_to_themselves() -> None:
    answers = {"a": "same text", "b": "same text"}
    assert merge_choices(["x", "a", "b", "x"], answers) == {"x": "x", "a": "a", "b": "a"}


def test_merging_is_transitive() -> None:
    # a~b and b~c (Jaccard 0.5) but a, c are far apart (0.2): one group all the same.
    answers = {"a": words(1, 2, 3), "b": words(2, 3, 4), "c": words(3, 4, 5)}
    assert similarity(answers["a"], answers["c"], "jaccard") < 0.5
    merged = merge_choices(["c", "a", "b"], answers, threshold=0.5, method="jaccard")
    assert merged == {"c": "c", "a": "c", "b": "c"}


@settings(max_examples=200)
@given(
    answers=st.dictionaries(st.sampled_from("abcdef"), texts, max_size=6),
    extra=st.lists(st.sampled_from("abcdefxy"), max_size=8),
    threshold=st.sampled_from([0.3, 0.5, 0.85, 1.0]),
    method=st.sampled_from(METHODS),
)
def test_merge_properties(
    answers: dict[str, str], extra: list[str], threshold: float, method: sim.Method
) -> None:
    candidates = [*answers, *extra]
    merged = merge_choices(candidates, answers, threshold=threshold, method=method)
    order = list(dict.fromkeys(candidates))
    assert list(merged) == order
    corpus = [answers[k] for k in sorted(answers)]
    for c in order:
        rep = merged[c]
        assert merged[rep] == rep  # idempotent: representatives stand for themselves
        assert order.index(rep) <= order.index(c)  # the earliest of its group
        if c not in answers:
            assert rep == c
    for i, c in enumerate(order):
        for d in order[:i]:
            linked = (
                c in answers
                and d in answers
                and similarity(answers[c], answers[d], method, corpus) >= threshold
            )
            if linked:
                assert merged[c] == merged[d]  # same group, so transitively too
    # Re-merging the representatives changes nothing.
    reps = list(dict.fromkeys(merged.values()))
    assert merge_choices(reps, answers, threshold=threshold, method=method) == {r: r for r in reps}
