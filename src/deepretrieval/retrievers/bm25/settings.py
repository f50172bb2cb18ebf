"""BM25 settings and the text analysis of ``bm25s.tokenize``, which indexing and search share."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import Stemmer
from bm25s import stopwords as lists
from pydantic import Field, ValidationInfo, field_validator

from deepretrieval.retrievers.base import RetrieverSettings

STOPWORDS: dict[str, tuple[str, ...]] = {
    name: tuple(words)
    for names, words in (
        (("english", "en"), lists.STOPWORDS_EN),
        (("english_plus", "en_plus"), lists.STOPWORDS_EN_PLUS),
        (("german", "de"), lists.STOPWORDS_GERMAN),
        (("dutch", "nl"), lists.STOPWORDS_DUTCH),
        (("french", "fr"), lists.STOPWORDS_FRENCH),
        (("spanish", "es"), lists.STOPWORDS_SPANISH),
        (("portuguese", "pt"), lists.STOPWORDS_PORTUGUESE),
        (("italian", "it"), lists.STOPWORDS_ITALIAN),
        (("russian", "ru"), lists.STOPWORDS_RUSSIAN),
        (("swedish", "sv"), lists.STOPWORDS_SWEDISH),
        (("norwegian", "no"), lists.STOPWORDS_NORWEGIAN),
        (("chinese", "zh"), lists.STOPWORDS_CHINESE),
        (("turkish", "tr"), lists.STOPWORDS_TURKISH),
        (("korean", "ko"), lists.STOPWORDS_KOREAN),
        (("danish", "da"), lists.STOPWORDS_DANISH),
    )
    for name in names
}
"""bm25s's stop-word lists under the names ``bm25s.tokenize`` accepts."""
WORD = re.compile(r"(?u)\b\w\w+\b")
"""``bm25s.tokenize``'s token pattern (scikit-learn's CountVectorizer)."""


K1_MAX = 10.0
"""k1's ceiling. Published defaults (Lucene 1.2, Anserini 0.9) and the range Robertson & Zaragoza (2009)
call reasonably good (1.2 < k1 < 2) lie well inside [0, 10]; far past it term frequency hardly saturates,
and at 1e308 the weights underflow to an all-zero index. b mixes the document length in (0: not at all,
1: fully), so it lies in [0, 1] by definition."""


class BM25Settings(RetrieverSettings):
    """Scoring and analysis settings. Defaults are Anserini/Lucene's BM25 (k1=0.9, b=0.4) with
    English Snowball stemming and English stop words."""

    k1: float = Field(0.9, ge=0, le=K1_MAX)
    b: float = Field(0.4, ge=0, le=1)
    method: Literal["lucene", "robertson", "atire", "bm25l", "bm25+"] = "lucene"
    stemmer: str | None = "english"
    stopwords: str | None = "en"

    @field_validator("method")
    @classmethod
    def _k1_for_method(cls, value: str, info: ValidationInfo) -> str:
        if value in ("bm25l", "bm25+") and info.data.get("k1") == 0:
            raise ValueError(
                f"{value} needs k1 > 0 (with k1=0 every weight is 0 or NaN); give k1 in (0, {K1_MAX:g}]"
            )
        return value

    @field_validator("stemmer")
    @classmethod
    def _known_stemmer(cls, value: str | None) -> str | None:
        if value is not None and value not in Stemmer.algorithms():
            raise ValueError(f"unknown stemmer; available: {', '.join(Stemmer.algorithms())}")
        return value

    @field_validator("stopwords")
    @classmethod
    def _known_stopwords(cls, value: str | None) -> str | None:
        if value is not None and value not in STOPWORDS:
            raise ValueError(f"unknown stop-word list; known: {', '.join(STOPWORDS)}")
        return value


def stemmer_of(settings: BM25Settings) -> Stemmer.Stemmer | None:
    """The Snowball stemmer ``settings`` name (None: no stemming)."""
    return Stemmer.Stemmer(settings.stemmer) if settings.stemmer else None


class Analyzer:
    """Texts -> analysed terms per text, exactly as ``bm25s.tokenize`` gives them (lower case, words of two or
    more word characters, stop words dropped, then each word stemmed), in order with repeats.

    Hand-written rather than calling ``bm25s.tokenize`` on the search and reward paths: that function builds
    up to three tqdm progress bars per call even when told not to show them (each takes tqdm's process-shared
    lock, which a killed child process can leave held), and rebuilds its stop-word set for every text; on the
    reward path, one call per distinct answer, that was three quarters of a batch's time. Indexing still calls
    ``bm25s.tokenize`` on large batches; ``tests/test_bm25.py`` checks both give the same terms."""

    def __init__(self, settings: BM25Settings) -> None:
        self._stopwords = frozenset(STOPWORDS[settings.stopwords]) if settings.stopwords else frozenset()
        self._stemmer = stemmer_of(settings)

    def __call__(self, texts: Sequence[str]) -> list[list[str]]:
        words = [[w for w in WORD.findall(text.lower()) if w not in self._stopwords] for text in texts]
        if self._stemmer is None:
            return words
        unique = list({word: None for text in words for word in text})
        stem = dict(zip(unique, self._stemmer.stemWords(unique)))
        return [[stem[word] for word in text] for text in words]
