"""A local Boolean search engine (tantivy) that reads PubMed and Ovid MEDLINE search syntax."""

from deepretrieval.retrievers.boolean.engine import BooleanRetriever, BooleanSettings, QueryOptions
from deepretrieval.retrievers.boolean.parse import detect_syntax, parse_query
from deepretrieval.retrievers.boolean.syntax import ParseError, QueryError

__all__ = [
    "BooleanRetriever",
    "BooleanSettings",
    "ParseError",
    "QueryError",
    "QueryOptions",
    "detect_syntax",
    "parse_query",
]
