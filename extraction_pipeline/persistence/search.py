"""Full-text search over ``cloud_file_text``: web-search queries on PostgreSQL and SQLite alike.

A query reads as in a web search engine: words (all must be there), ``"quoted phrases"`` (the words
in that order), ``-word`` or ``-"a phrase"`` (must not be there) and ``or`` between two parts
(either side). ``parse_query`` turns it into OR-ed groups of AND-ed terms; each backend gets that
structure with the user's text only ever inside bound parameters (PostgreSQL: ``phraseto_tsquery``
per term, combined with ``&&``, ``||`` and ``!!``) or inside FTS5 string literals (SQLite, quotes
doubled), so no query can become SQL or an FTS5 syntax error. A group with nothing but exclusions
matches nothing, on both backends. Long queries are cut to ``MAX_TERMS`` terms of ``MAX_TERM_CHARS``.

Ranking: PostgreSQL ``ts_rank`` normalised by the text's length, SQLite FTS5's BM25: a short text
that is mostly the words sought (a title block) comes before a long one that mentions them once.
PostgreSQL ranks the first ``MAX_RANKED`` matches the index yields: a query whose words are in
nearly every text (tens of thousands of matches) stays fast, and is ranked among those only.
The snippet marks the matches with ``[`` and ``]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from extraction_pipeline.persistence.database import Store, translate_db_errors
from extraction_pipeline.persistence.models import CloudFileText

MAX_TERMS = 32
MAX_TERM_CHARS = 200
MAX_LIMIT = 1000
# PostgreSQL ranks at most this many matching texts (see ``_postgres_statement``).
MAX_RANKED = 2000
# A term is a quoted phrase (closing quote optional) or a run of non-blank characters.
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_WORDLIKE = re.compile(r"\w")


@dataclass(frozen=True)
class Term:
    text: str
    negated: bool = False


@dataclass
class Group:
    terms: list[Term] = field(default_factory=list)

    @property
    def positive(self) -> list[Term]:
        return [t for t in self.terms if not t.negated]

    @property
    def negative(self) -> list[Term]:
        return [t for t in self.terms if t.negated]


@dataclass(frozen=True)
class SearchHit:
    id: int
    filename: str
    format: str | None
    rank: float
    snippet: str


def parse_query(query: str) -> list[Group]:
    """The query as OR-ed groups of AND-ed terms; groups without a term to look for are dropped."""
    groups = [Group()]
    count = 0
    for match in _TOKEN.finditer(_CONTROL.sub(" ", query)):
        if count >= MAX_TERMS:
            break
        minus, phrase, word = match.groups()
        if word is not None and word.lower() == "or":
            if groups[-1].terms:
                groups.append(Group())
            continue
        negated = bool(minus)
        text = phrase if phrase is not None else word
        if word is not None and word.startswith("-") and len(word) > 1:
            negated, text = True, word[1:]
        text = " ".join(text.split())[:MAX_TERM_CHARS]
        if not _WORDLIKE.search(text):  # punctuation alone: nothing any index holds
            continue
        groups[-1].terms.append(Term(text, negated))
        count += 1
    return [group for group in groups if group.positive]


def fts5_expression(groups: list[Group]) -> str:
    """The FTS5 MATCH expression of ``groups``: every term a string literal."""

    def literal(term: Term) -> str:
        return '"' + term.text.replace('"', '""') + '"'

    parts = []
    for group in groups:
        expression = "(" + " AND ".join(literal(t) for t in group.positive) + ")"
        if group.negative:
            expression += " NOT (" + " OR ".join(literal(t) for t in group.negative) + ")"
        parts.append("(" + expression + ")")
    return " OR ".join(parts)


def _postgres_tsquery(groups: list[Group], params: dict[str, Any]) -> str:
    """SQL for the tsquery of ``groups``; the terms go into ``params``."""

    def term_sql(term: Term) -> str:
        name = f"t{len(params)}"
        params[name] = term.text
        sql = f"phraseto_tsquery('simple', :{name})"
        return f"!!{sql}" if term.negated else sql

    parts = ["(" + " && ".join(term_sql(t) for t in group.terms) + ")" for group in groups]
    return "(" + " || ".join(parts) + ")"


def search(
    engine: sa.Engine, url: str, query: str, *, fmt: str | None = None, limit: int = 20
) -> list[SearchHit]:
    """Files whose text matches ``query``, best first (at most ``limit``; ``fmt``: only that format)."""
    groups = parse_query(query)
    limit = max(1, min(limit, MAX_LIMIT))
    if not groups:
        return []
    dialect = engine.dialect.name
    if dialect == "postgresql":
        statement, params = _postgres_statement(groups, fmt, limit)
    elif dialect == "sqlite":
        statement, params = _sqlite_statement(groups, fmt, limit)
    else:
        raise NotImplementedError(f"full-text search is not available on {dialect}")
    with translate_db_errors(url), engine.connect() as connection:
        rows = connection.execute(sa.text(statement), params).all()
    return [
        SearchHit(id=int(row.id), filename=row.filename, format=row.format, rank=round(float(row.rank), 6),
                  snippet=" ".join((row.snippet or "").split()))
        for row in rows
    ]  # fmt: skip


_FORMAT_FILTER = "AND m.format = :fmt"


def _postgres_statement(groups: list[Group], fmt: str | None, limit: int) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {"limit": limit}
    tsquery = _postgres_tsquery(groups, params)
    if fmt is not None:
        params["fmt"] = fmt
    # At most MAX_RANKED matches are ranked (a word in every text would rank them all: 0.4-1.8 s
    # at 100k texts), then the few best get their headline (ts_headline reads the whole text).
    params["candidates"] = MAX_RANKED
    statement = f"""
        WITH q AS (SELECT {tsquery} AS query),
        hits AS (
            SELECT t.cloud_file_id, t.tsv
            FROM cloud_file_text t CROSS JOIN q
            JOIN cloud_file_metadata m ON m.cloud_file_id = t.cloud_file_id
            WHERE t.tsv @@ q.query {_FORMAT_FILTER if fmt is not None else ""}
            LIMIT :candidates
        ),
        best AS (
            SELECT hits.cloud_file_id AS id, ts_rank(hits.tsv, q.query, 1) AS rank
            FROM hits CROSS JOIN q
            ORDER BY rank DESC, hits.cloud_file_id
            LIMIT :limit
        )
        SELECT best.id, f.filename, m.format, best.rank,
               ts_headline('simple', t.text, q.query,
                           'StartSel=[, StopSel=], MaxWords=24, MinWords=8, MaxFragments=1') AS snippet
        FROM best CROSS JOIN q
        JOIN cloud_file_text t ON t.cloud_file_id = best.id
        JOIN cloud_files f ON f.id = best.id
        JOIN cloud_file_metadata m ON m.cloud_file_id = best.id
        ORDER BY best.rank DESC, best.id
    """
    return statement, params


def _sqlite_statement(groups: list[Group], fmt: str | None, limit: int) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {"expression": fts5_expression(groups), "limit": limit}
    if fmt is not None:
        params["fmt"] = fmt
    statement = f"""
        SELECT s.rowid AS id, f.filename, m.format, -bm25(cloud_file_text_fts) AS rank,
               snippet(cloud_file_text_fts, 0, '[', ']', '…', 16) AS snippet
        FROM cloud_file_text_fts s
        JOIN cloud_files f ON f.id = s.rowid
        JOIN cloud_file_metadata m ON m.cloud_file_id = s.rowid
        WHERE cloud_file_text_fts MATCH :expression {_FORMAT_FILTER if fmt is not None else ""}
        ORDER BY bm25(cloud_file_text_fts), s.rowid
        LIMIT :limit
    """
    return statement, params


class TextSearch(Store):
    """The repository's queries over ``cloud_file_text`` (written by ``attempts``, with the metadata)."""

    def search(self, query: str, *, fmt: str | None = None, limit: int = 20) -> list[SearchHit]:
        """Files whose text matches ``query``, best first (see the module's docstring)."""
        return search(self.engine, self.url, query, fmt=fmt, limit=limit)

    def text_of(self, file_id: int) -> CloudFileText | None:
        with translate_db_errors(self.url), self.sessions() as session:
            return session.get(CloudFileText, file_id)
