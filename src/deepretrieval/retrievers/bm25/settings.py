"""BM25 settings and the one text analysis that indexing and search share (``bm25s.tokenize``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import bm25s
import Stemmer
from pydantic import Field, field_validator

from deepretrieval.retrievers.base import RetrieverSettings

Tokenizer = Callable[[list[str]], list[list[str]]]


class BM25Settings(RetrieverSettings):
    """Scoring and analysis settings. Defaults are Anserini/Lucene's BM25 (k1=0.9, b=0.4) with
    English Snowball stemming and English stop words."""

    k1: float = Field(0.9, ge=0)
    b: float = Field(0.4, ge=0, le=1)
    method: Literal["lucene", "robertson", "atire", "bm25l", "bm25+"] = "lucene"
    stemmer: str | None = "english"
    stopwords: str | None = "en"

    @field_validator("stemmer")
    @classmethod
    def _known_stemmer(cls, value: str | None) -> str | None:
        if value is not None and value not in Stemmer.algorithms():
            raise ValueError(f"unknown stemmer; available: {', '.join(Stemmer.algorithms())}")
        return value

    @field_validator("stopwords")
    @classmethod
    def _known_stopwords(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                bm25s.tokenize([""], stopwords=value, show_progress=False)
            except ValueError:
                raise ValueError("unknown stop-word list; use a language code such as en, de, fr") from None
        return value


def stemmer_of(settings: BM25Settings) -> Stemmer.Stemmer | None:
    """The Snowball stemmer ``settings`` name (None: no stemming)."""
    return Stemmer.Stemmer(settings.stemmer) if settings.stemmer else None


def tokenizer(settings: BM25Settings) -> Tokenizer:
    """Texts -> analysed terms per text, as ``settings`` say (the one analysis of indexing and search)."""
    stemmer = stemmer_of(settings)

    def tokenize(texts: list[str]) -> list[list[str]]:
        return bm25s.tokenize(
            texts, stopwords=settings.stopwords or [], stemmer=stemmer, return_ids=False, show_progress=False
        )

    return tokenize
