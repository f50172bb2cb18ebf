"""Reading a query in the syntax it is written in: PubMed, Ovid, or whichever its markers say."""

from __future__ import annotations

import re

from deepretrieval.retrievers.boolean.ovid_parser import parse_ovid
from deepretrieval.retrievers.boolean.pubmed_parser import KNOWN_TAGS, parse_pubmed
from deepretrieval.retrievers.boolean.syntax import Limits, Strategy

_OVID_MARKERS = re.compile(
    r"(?im)^\s*(?:or|and)\s*/\s*\d|^\s*limit\s+\d+\s+to\b|\bexp\s+\*?[\w\"]|\badj\d*\b|/\s*$"
    r"|\.(?:ti|ab|tw|mp|sh|au|ot|kw|nm|rn|pt)(?:,[a-z]{2})*\.?(?=[\s)]|$)|\w\$"
)
_PUBMED_MARKERS = re.compile(r"#\d|\b(?:AND|OR|NOT)\b")
_TAGS = re.compile(r"\[([^\]]{1,40})\]")


def parse_query(text: str, syntax: str = "auto", limits: Limits | None = None) -> Strategy:
    """Parse ``text`` as ``pubmed``, ``ovid``, or (``auto``) as :func:`detect_syntax` says; raises
    :class:`~deepretrieval.retrievers.boolean.syntax.ParseError` when it does not parse."""
    if syntax == "auto":
        syntax = detect_syntax(text)
    return (parse_ovid if syntax == "ovid" else parse_pubmed)(text, limits)


def detect_syntax(text: str) -> str:
    """``ovid`` when the text carries more Ovid markers (``or/1-5``, ``exp X/``, ``.ti,ab.``, ``adj3``,
    ``limit N to``, ``$`` truncation, a line ending in ``/``) than PubMed ones (known field tags such as
    ``[tiab]``, ``#N`` line references, upper-case ``AND``/``OR``/``NOT``); otherwise ``pubmed``."""
    ovid = len(_OVID_MARKERS.findall(text))
    if not ovid:
        return "pubmed"
    pubmed = sum(1 for tag in _TAGS.findall(text) if _tag_base(tag) in KNOWN_TAGS)
    pubmed += len(_PUBMED_MARKERS.findall(text))
    return "ovid" if ovid > pubmed else "pubmed"


def _tag_base(tag: str) -> str:
    return " ".join(tag.lower().partition(":")[0].split())
