"""Questions in TSV or CSV files (``.tsv``: tab-separated, ``.csv``: comma-separated, quoted as by Python's
``csv``), for evaluation on questions that come as a spreadsheet:

* question/answer tables (evidence seeking): a header naming a ``question`` (or ``query``) column and an
  ``answers`` (or ``answer``) column, optionally an ``id`` column; or no header and the question then the
  answers, as DPR's ``nq-test.qa.csv`` (``question<TAB>['answer', ...]``). Answers are a JSON or Python list
  of strings, or one answer as plain text;
* query tables (BEIR-style retrieval): a header naming an id column (``_id``, ``id``, ``qid``, ``query-id``)
  and a text column (``text``, ``query``, ``question``), or no header and the id then the text, as MS MARCO's
  ``queries.dev.tsv``.
"""

from __future__ import annotations

import ast
import csv
import json
from pathlib import Path

SUFFIXES = {".tsv": "\t", ".csv": ","}
QUESTION_COLUMNS = ("question", "query", "text")
ANSWER_COLUMNS = ("answers", "answer")
ID_COLUMNS = ("_id", "id", "qid", "query-id", "query_id")


class QuestionFileError(ValueError):
    """A question file that cannot be read; the message names the file, the line and the fix."""


def is_question_file(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES


def _rows(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise QuestionFileError(f"file not found: {path}")
    delimiter = SUFFIXES.get(path.suffix.lower())
    if delimiter is None:
        raise QuestionFileError(f"{path}: a question file is .tsv or .csv")
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = [
                row for row in csv.reader(handle, delimiter=delimiter) if any(cell.strip() for cell in row)
            ]
    except UnicodeDecodeError as err:
        raise QuestionFileError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except csv.Error as err:
        raise QuestionFileError(f"{path}: not {path.suffix[1:].upper()} ({err})") from None
    if not rows:
        raise QuestionFileError(f"{path} holds no questions")
    return rows


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    lowered = [cell.strip().lower() for cell in header]
    return next((lowered.index(name) for name in names if name in lowered), None)


def _answers(cell: str, where: str) -> list[str]:
    text = cell.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            try:
                value = ast.literal_eval(text)  # DPR's files hold Python lists: ['Daei', 'Ali Daei']
            except (ValueError, SyntaxError):
                raise QuestionFileError(
                    f"{where}: answers {text[:60]!r} are not a JSON or Python list"
                ) from None
        if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
            raise QuestionFileError(f"{where}: answers must be a list of strings, got {text[:60]!r}")
        return value
    if not text:
        raise QuestionFileError(f"{where}: no answer")
    return [text]


def read_qa_table(path: Path) -> list[tuple[str, str, list[str]]]:
    """(id, question, answers) per row; the id is the ``id`` column, else the row's line number (a file may
    ask the same question twice)."""
    rows = _rows(path)
    header = rows[0]
    question, answers = _column(header, QUESTION_COLUMNS), _column(header, ANSWER_COLUMNS)
    ident = _column(header, ID_COLUMNS)
    if question is not None and answers is not None:
        body, first_line = rows[1:], 2
    elif question is None and answers is None and len(header) >= 2:
        question, answers, ident, body, first_line = 0, 1, None, rows, 1
    else:
        raise QuestionFileError(
            f"{path}: expected a header with a question column and an answers column, or no header and "
            f"question, answers on each line; got {header[:4]}"
        )
    found = []
    for line, row in enumerate(body, first_line):
        where = f"{path}:{line}"
        if len(row) <= max(question, answers):
            raise QuestionFileError(f"{where}: expected a question and its answers, got {row[:3]}")
        text = row[question].strip()
        found.append(
            (row[ident].strip() if ident is not None else str(line), text, _answers(row[answers], where))
        )
    return found


def read_query_table(path: Path) -> dict[str, str]:
    """``{query id: text}`` from an id column and a text column (or, with no header, id then text)."""
    rows = _rows(path)
    header = rows[0]
    ident, text = _column(header, ID_COLUMNS), _column(header, QUESTION_COLUMNS)
    if ident is not None and text is not None:
        body, first_line = rows[1:], 2
    elif ident is None and text is None and len(header) >= 2:
        ident, text, body, first_line = 0, 1, rows, 1
    else:
        raise QuestionFileError(
            f"{path}: expected a header with an id column (_id, id, qid) and a text column (text, query), or "
            f"no header and id, text on each line; got {header[:4]}"
        )
    queries = {}
    for line, row in enumerate(body, first_line):
        if len(row) <= max(ident, text) or not row[ident].strip():
            raise QuestionFileError(f"{path}:{line}: expected a query id and its text, got {row[:3]}")
        queries[row[ident].strip()] = row[text].strip()
    return queries
