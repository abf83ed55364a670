"""Full-text search over cloud_file_text on SQLite (FTS5) and PostgreSQL (tsvector + GIN).

Texts are written the way a run writes them (``materialize_many`` with the envelope's text).
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from extraction_pipeline.persistence.repository import CloudFileRepository
from extraction_pipeline.persistence.search import fts5_expression, parse_query
from extraction_pipeline_tests.conftest import add_file_row

TITLE_BLOCK = "DRAWN BY J. SMITH\nPART NO P-4711-B\nPUMP HOUSING REV C"
MANUAL = " ".join(
    ["The maintenance manual explains the pump and its seals in great detail."] * 40
    + ["A replacement housing, see P-4711-B, may be ordered separately."]
    + ["Lubricate the bearings every six months and record it in the log."] * 40
)
SPEC = "Concrete C30/37, exposure class XC4. Reinforcement B500B. Ground floor slab."
MODEL = "My Project\nMy Site\nMy Building\nGround Floor\nLevel 1\nPump room"


def store(repository: CloudFileRepository, name: str, fmt: str, text: str | None, **extra: Any) -> int:
    file_id = add_file_row(repository, name)
    envelope = {
        "format": fmt,
        "variant": None,
        "extractor": {"name": fmt, "version": "1.0.0"},
        "metadata": {},
        "warnings": [],
        "text": text,
        "text_truncated": False,
        **extra,
    }
    assert repository.materialize_many([(file_id, 0, envelope, {"format": fmt})]) == {file_id}
    return file_id


@pytest.fixture
def files(repository: CloudFileRepository) -> dict[str, int]:
    return {
        "title": store(repository, "pump-housing.dxf", "dxf", TITLE_BLOCK),
        "manual": store(repository, "manual.pdf", "pdf", MANUAL),
        "spec": store(repository, "spec.pdf", "pdf", SPEC),
        "model": store(repository, "building.ifc", "ifc", MODEL),
        "silent": store(repository, "lines.dxf", "dxf", None),
    }


def ids(repository: CloudFileRepository, query: str, **options: Any) -> list[int]:
    return [hit.id for hit in repository.search(query, **options)]


def test_words_phrases_exclusions_and_alternatives(
    repository: CloudFileRepository, files: dict[str, int]
) -> None:
    assert set(ids(repository, "pump")) == {files["title"], files["manual"], files["model"]}
    assert set(ids(repository, "pump housing")) == {files["title"], files["manual"]}  # both words
    assert set(ids(repository, "ground floor")) == {files["spec"], files["model"]}
    assert ids(repository, '"floor slab"') == [files["spec"]]
    assert ids(repository, '"slab floor"') == []  # a phrase keeps its order
    assert ids(repository, "ground -concrete") == [files["model"]]
    assert ids(repository, 'ground -"exposure class"') == [files["model"]]
    assert set(ids(repository, "xc4 or lubricate")) == {files["spec"], files["manual"]}
    assert set(ids(repository, "XC4 OR room")) == {files["spec"], files["model"]}
    assert ids(repository, "pump", fmt="pdf") == [files["manual"]]
    assert ids(repository, "pump", fmt="ifc") == [files["model"]]
    assert ids(repository, "pump", fmt="step") == []
    assert len(ids(repository, "pump", limit=1)) == 1
    assert ids(repository, "-pump") == []  # nothing to look for
    assert ids(repository, "zeppelin") == []


def test_an_exact_title_block_match_ranks_above_a_passing_mention(
    repository: CloudFileRepository, files: dict[str, int]
) -> None:
    hits = repository.search("P-4711-B housing")
    assert [hit.id for hit in hits] == [files["title"], files["manual"]]
    assert hits[0].rank > hits[1].rank > 0
    title = hits[0]
    assert title.filename == "pump-housing.dxf" and title.format == "dxf"
    assert "[" in title.snippet and "]" in title.snippet and "4711" in title.snippet


HOSTILE = [
    '"',
    '"""',
    "\\",
    "\\\\\\'",
    "'",
    "'; DROP TABLE cloud_files; --",
    "pump' OR '1'='1",
    "NEAR(pump housing, 2)",
    "pump*",
    "^pump",
    "text:pump",
    "pump AND OR NOT",
    "(pump",
    "pump)",
    "{text}: pump",
    "- - -",
    "or or or",
    "\x00pump\x00",
    "pump\u0000\u001f\u007f",
    "P&ID | !pump <-> :* ",
    "Ωμέγα 東京 emoji 🚒",
    "-",
    "",
    "   ",
    "pump " * 2500,  # 12.5 KB
    '"' + "x" * 10_000 + '"',
    "a" * 10_240,
]


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
def test_no_query_becomes_sql_or_crashes_the_parser(
    repository: CloudFileRepository, files: dict[str, int], query: str
) -> None:
    hits = repository.search(query)
    assert isinstance(hits, list)
    assert all(hit.id in files.values() for hit in hits)
    with repository.engine.connect() as connection:  # the tables are all there
        assert connection.execute(sa.text("SELECT count(*) FROM cloud_files")).scalar_one() == len(files)
        assert (
            connection.execute(sa.text("SELECT count(*) FROM cloud_file_text")).scalar_one() == len(files) - 1
        )


def test_quotes_and_operators_in_a_query_are_searched_as_text(
    repository: CloudFileRepository, files: dict[str, int]
) -> None:
    # Words and the web-search `or`, nothing more: "'1'='1" is text that no file holds.
    assert set(ids(repository, "pump' OR '1'='1")) == set(ids(repository, "pump"))
    assert ids(repository, "'1'='1") == []
    assert ids(repository, "NEAR(pump housing)") == []  # the word "near", not FTS5's NEAR operator
    assert set(ids(repository, "(pump housing)")) == {files["title"], files["manual"]}
    assert ids(repository, '"pump housing') == [files["title"]]  # an unclosed phrase ends at the end


def test_a_text_follows_its_file_through_re_extraction_and_deletion(
    repository: CloudFileRepository, files: dict[str, int]
) -> None:
    spec = files["spec"]
    assert ids(repository, "reinforcement") == [spec]
    envelope = {
        "format": "pdf",
        "extractor": {"version": "1.0.0"},
        "metadata": {},
        "text": "Revised: steel B550",
    }
    repository.materialize_many([(spec, 0, envelope, {})])
    assert ids(repository, "reinforcement") == [] and ids(repository, "B550") == [spec]
    text = repository.text_of(spec)
    assert text is not None and text.char_count == len("Revised: steel B550") and not text.truncated
    repository.materialize_many([(spec, 0, {**envelope, "text": None}, {})])  # no text any more
    assert repository.text_of(spec) is None and ids(repository, "B550") == []
    # A run that did not gather text (EXTRACTION_MAX_TEXT_CHARS=0) leaves the stored one alone.
    title = files["title"]
    no_text = {"format": "dxf", "extractor": {"version": "1.0.0"}, "metadata": {}}
    repository.materialize_many([(title, 0, no_text, {})])
    assert ids(repository, "P-4711-B") == [title, files["manual"]]
    [deleted] = repository.delete_files([title])
    assert deleted.id == title and repository.text_of(title) is None
    assert ids(repository, "P-4711-B") == [files["manual"]]


def test_a_text_of_a_million_distinct_words_is_stored_and_searchable(repository: CloudFileRepository) -> None:
    """PostgreSQL's tsvector holds 1 MB: the longest prefix that fits is indexed, the insert never fails."""
    words = " ".join(f"w{i:07d}x{i * 7919 % 100000:05d}" for i in range(60_000))
    file_id = store(repository, "huge.pdf", "pdf", "needle " + words)
    assert ids(repository, "needle") == [file_id]
    assert repository.text_of(file_id) is not None


def test_the_parser_keeps_the_structure_and_quotes_every_term() -> None:
    groups = parse_query('ground "floor slab" -concrete or "x""y" NEAR')
    assert [[(t.text, t.negated) for t in g.terms] for g in groups] == [
        [("ground", False), ("floor slab", False), ("concrete", True)],
        [("x", False), ("y", False), ("NEAR", False)],
    ]
    assert fts5_expression(groups) == (
        '(("ground" AND "floor slab") NOT ("concrete")) OR (("x" AND "y" AND "NEAR"))'
    )
    assert fts5_expression(parse_query('pump"s')) == '(("pump""s"))'  # a quote inside a word: doubled
    assert parse_query("-only -exclusions") == []
    assert len([t for g in parse_query("w " * 500) for t in g.terms]) == 32


def test_a_word_in_more_texts_than_are_ranked_still_finds_only_matches(
    repository: CloudFileRepository, files: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL ranks at most MAX_RANKED matches (a word in every text stays fast); SQLite ranks all."""
    from extraction_pipeline.persistence import search as search_module

    monkeypatch.setattr(search_module, "MAX_RANKED", 2)
    common = [store(repository, f"sheet-{n}.pdf", "pdf", f"common sheet {n}") for n in range(5)]
    found = ids(repository, "common", limit=10)
    assert set(found) <= set(common) and len(found) == (2 if repository.url.startswith("postgresql") else 5)
    assert ids(repository, "common", fmt="dxf") == []
    assert ids(repository, '"sheet 3"') == [common[3]]
