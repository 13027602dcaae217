"""Text similarity for convergence detection and for merging near-identical vote choices.

Pure and deterministic: TF-IDF cosine and Jaccard need only the stdlib. Sentence
embeddings are an optional extra used only when ``sentence_transformers`` is installed
and ``ARAGORA_EMBEDDINGS_MODEL`` names a model already on disk; nothing is downloaded,
and anything that goes wrong there falls back to TF-IDF.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import msgspec

from aragora.contracts.values import ConvergenceStatus

Method = Literal["embeddings", "tfidf", "jaccard"]
METHODS: tuple[Method, ...] = ("embeddings", "tfidf", "jaccard")
EMBEDDINGS_MODEL_ENV = "ARAGORA_EMBEDDINGS_MODEL"

# Function words carry no position; dropping them keeps "the cat" and "a cat" close.
# Negations ("no", "not") are kept on purpose: they flip a stance.
# fmt: off
STOPWORDS: frozenset[str] = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have", "he",
    "her", "his", "i", "if", "in", "into", "is", "it", "its", "me", "my", "of", "on", "or",
    "our", "she", "so", "than", "that", "the", "their", "them", "then", "there", "these",
    "they", "this", "those", "to", "too", "us", "was", "we", "were", "what", "when", "which",
    "who", "will", "with", "would", "you", "your"
})
# fmt: on
_WORD = re.compile(r"\w+")  # str patterns match Unicode word characters by default

Scorer = Callable[[str, str], float]


class Convergence(msgspec.Struct, frozen=True):
    """How far each agent's text moved between two rounds, and what that says overall.

    ``method`` is the method actually used (``"tfidf"`` when embeddings were asked for
    but are unavailable). ``similarities`` maps agent -> similarity, 4 decimals.
    """

    method: str
    similarities: dict[str, float]
    min_similarity: float | None
    status: ConvergenceStatus | None


def available_method() -> Method:
    """The best method usable here: ``"embeddings"`` if a local model loads, else TF-IDF."""
    return "embeddings" if _embedding_model() is not None else "tfidf"


def similarity(a: str, b: str, method: Method = "tfidf", corpus: Sequence[str] = ()) -> float:
    """Similarity of two texts in [0, 1]; symmetric, and exactly 1.0 for identical texts.

    For TF-IDF the IDF is computed over ``corpus`` plus ``a`` and ``b``. Texts without
    any token (after stopwords) are similar only to other token-less texts.
    """
    return _scorer(method, corpus)(a, b)


def measure_convergence(
    previous: Mapping[str, str],
    current: Mapping[str, str],
    *,
    method: Method = "tfidf",
    converged_at: float = 0.85,
    diverging_below: float = 0.40,
) -> Convergence:
    """Compare each agent's current text with its own previous one; the least similar decides.

    Only agents present in both rounds count. The status is decided on the rounded
    minimum so that the reported ``min_similarity`` and ``status`` always agree.
    """
    resolved = _resolve(method)
    common = sorted(previous.keys() & current.keys())
    if not common:
        return Convergence(method=resolved, similarities={}, min_similarity=None, status=None)
    score = _scorer(resolved, [*previous.values(), *current.values()])
    sims = {agent: round(score(previous[agent], current[agent]), 4) for agent in common}
    low = min(sims.values())
    status: ConvergenceStatus
    if low >= converged_at:
        status = "converged"
    elif low >= diverging_below:
        status = "refining"
    else:
        status = "diverging"
    return Convergence(method=resolved, similarities=sims, min_similarity=low, status=status)


def merge_choices(
    candidates: Sequence[str],
    answers: Mapping[str, str],
    *,
    threshold: float = 0.85,
    method: Method = "tfidf",
) -> dict[str, str]:
    """Map each candidate to the earliest candidate whose answer is (transitively) alike.

    Two candidates are linked when their answers are at least ``threshold`` similar;
    each connected group maps to its first member in ``candidates`` order. The IDF
    corpus is every answer in ``answers``, so the result does not depend on which
    candidates are asked about (re-merging the representatives changes nothing).
    """
    order = list(dict.fromkeys(candidates))  # de-duplicate, keep first occurrence
    score = _scorer(method, [answers[key] for key in sorted(answers)])
    parent = list(range(len(order)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for j, right in enumerate(order):
        if right not in answers:
            continue
        for i in range(j):
            left = order[i]
            if left in answers and score(answers[left], answers[right]) >= threshold:
                ri, rj = root(i), root(j)
                # The smaller index becomes the root, so a group's root is its earliest member.
                parent[max(ri, rj)] = min(ri, rj)
    return {name: order[root(i)] for i, name in enumerate(order)}


# --- internals ---------------------------------------------------------------------------


def _resolve(method: Method) -> Method:
    if method not in METHODS:
        raise ValueError(f"unknown similarity method: {method!r}")
    if method == "embeddings" and _embedding_model() is None:
        return "tfidf"
    return method


def _scorer(method: Method, corpus: Iterable[str]) -> Scorer:
    """A pairwise similarity function; corpus statistics are computed once per scorer."""
    resolved = _resolve(method)
    pair: Scorer
    if resolved == "jaccard":
        pair = _jaccard
    elif resolved == "embeddings":
        pair = _embedding_scorer()
    else:
        pair = _tfidf_scorer(corpus)

    def score(a: str, b: str) -> float:
        if a == b:
            return 1.0
        ta, tb = _tokens(a), _tokens(b)
        if not ta or not tb:
            return 1.0 if not ta and not tb else 0.0
        if Counter(ta) == Counter(tb):  # same words, different case/punctuation
            return 1.0
        return min(1.0, max(0.0, pair(a, b)))

    return score


@functools.lru_cache(maxsize=4096)
def _tokens(text: str) -> tuple[str, ...]:
    return tuple(w for w in _WORD.findall(text.lower()) if w not in STOPWORDS)


def _jaccard(a: str, b: str) -> float:
    sa, sb = set(_tokens(a)), set(_tokens(b))
    return len(sa & sb) / len(sa | sb)


def _tfidf_scorer(corpus: Iterable[str]) -> Scorer:
    base_df: Counter[str] = Counter()
    base_n = 0
    for text in corpus:
        base_df.update(set(_tokens(text)))
        base_n += 1

    def cosine(a: str, b: str) -> float:
        ca, cb = Counter(_tokens(a)), Counter(_tokens(b))
        n = base_n + 2  # the pair itself belongs to the documents the IDF is taken over

        def vector(counts: Counter[str]) -> dict[str, float]:
            out: dict[str, float] = {}
            for term, tf in counts.items():
                df = base_df[term] + (term in ca) + (term in cb)
                out[term] = tf * (math.log((1 + n) / (1 + df)) + 1.0)
            return out

        va, vb = vector(ca), vector(cb)
        # fsum is exactly rounded, so the result does not depend on summation order:
        # that keeps the score symmetric in (a, b) and independent of dict ordering.
        dot = math.fsum(va[t] * vb[t] for t in va.keys() & vb.keys())
        norm_a = math.sqrt(math.fsum(w * w for w in va.values()))
        norm_b = math.sqrt(math.fsum(w * w for w in vb.values()))
        return dot / (norm_a * norm_b)

    return cosine


def _embedding_scorer() -> Scorer:
    model = _embedding_model()
    if model is None:  # callers resolve the method first; this guards direct misuse
        raise RuntimeError("no embeddings model is available")
    cache: dict[str, list[float]] = {}

    def embed(text: str) -> list[float]:
        if text not in cache:
            vector = model.encode([text], normalize_embeddings=True)[0]
            cache[text] = [float(x) for x in vector]
        return cache[text]

    def cosine(a: str, b: str) -> float:
        return math.fsum(x * y for x, y in zip(embed(a), embed(b), strict=True))

    return cosine


def _embedding_model() -> Any | None:
    name = os.environ.get(EMBEDDINGS_MODEL_ENV, "").strip()
    return _load_model(name) if name else None


@functools.cache
def _load_model(name: str) -> Any | None:
    """Load a sentence-transformers model from local files only; ``None`` on any failure."""
    if importlib.util.find_spec("sentence_transformers") is None:
        return None
    try:
        module = importlib.import_module("sentence_transformers")
        # local_files_only: never reach the network; an uncached model simply fails to load.
        return module.SentenceTransformer(name, local_files_only=True)
    except Exception:  # an optional extra: any failure means "not available"
        return None
