"""What the text costs: extraction with text against without, and search over 100k stored texts.

- ``text_overhead_ratio``: per format, ``extract_file`` of the templates with the text gathered
  (``max_text_chars`` = the default cap) over the same without it, best of ``repeat`` each, in this
  process (the library imports paid before timing); the median over the formats.
- ``search_ms_at_100k``: a fresh PostgreSQL database, migrated, with ``texts`` files whose texts are
  drawn from a 20,000-word vocabulary with a Zipf-like frequency (a few words everywhere, most
  rare), 150-600 words each (about 1-4 KB: a drawing's or a model's text; the documents' length
  varies), inserted by SQL (the generated tsvector and the GIN index do their work as in the
  pipeline), then ``ANALYZE``; the median of ``queries`` searches through the repository (``search``,
  limit 20: ranked, with snippets) over a mix of common and rare words, phrases, exclusions and
  ``or``.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.common import log

VOCABULARY = 20_000
# The queries: common words (many matches to rank), rare ones, phrases, exclusions and alternatives.
QUERIES = (
    "w1",
    "w2 w3",
    "w17",
    '"w1 w2"',
    "w5 -w1",
    "w123 or w456",
    "w9999",
    "w19999 w1",
    '"w40 w41" or w77',
    "w3 w4 w5",
    "w250",
    "w1 w2 w3 w4",
    "w15000",
    '"w7 w8"',
    "w60 -w2 -w3",
    "w1 or w2",
    "w1234",
    "w8 w800",
    "w11 w22 or w33",
    "w5000 w5001",
)


def measure_text_overhead(paths: list[Path], repeat: int) -> dict[str, Any]:
    from extraction_pipeline.extraction.extract import extract_file
    from extraction_pipeline.extraction.text import DEFAULT_MAX_TEXT_CHARS

    by_format: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for path in paths:
        first = extract_file(path, max_text_chars=DEFAULT_MAX_TEXT_CHARS)  # imports, caches
        if first.status != "succeeded":
            continue
        plain_s, text_s = [], []
        for _ in range(repeat):
            started = time.perf_counter()
            extract_file(path)
            plain_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            extract_file(path, max_text_chars=DEFAULT_MAX_TEXT_CHARS)
            text_s.append(time.perf_counter() - started)
        by_format[first.format].append((min(plain_s), min(text_s), len(first.text or "")))
    per_format = {}
    for fmt, rows in sorted(by_format.items()):
        plain, with_text = sum(r[0] for r in rows), sum(r[1] for r in rows)
        per_format[fmt] = {
            "files": len(rows),
            "metadata_ms": round(plain * 1000, 1),
            "with_text_ms": round(with_text * 1000, 1),
            "ratio": round(with_text / plain, 3) if plain > 0 else None,
            "text_chars": sum(r[2] for r in rows),
        }
    ratios = [row["ratio"] for row in per_format.values() if row["ratio"] is not None]
    return {"median_ratio": round(statistics.median(ratios), 3) if ratios else None, "per_format": per_format}


def _fill(url: str, texts: int) -> float:
    """``texts`` files with metadata and text, inserted in batches by SQL; the seconds it took."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    batch = 10_000
    started = time.perf_counter()
    with engine.begin() as conn:
        # w<k> with k = floor(VOCABULARY ** u) for uniform u: a few words very common, most rare.
        conn.execute(
            sa.text(
                "CREATE TEMP TABLE words AS SELECT g AS n, 'w' || floor(power(:vocab, random()))::int AS word "
                "FROM generate_series(1, 2000000) g"
            ),
            {"vocab": VOCABULARY},
        )
        conn.execute(sa.text("CREATE INDEX ON words (n)"))
        conn.execute(sa.text("ANALYZE words"))
    for start in range(1, texts + 1, batch):
        stop = min(start + batch - 1, texts)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO cloud_files (id, filename, size_bytes, sha256, storage_uri, uploaded_at, "
                    "extraction_status, extraction_generation, extraction_force) "
                    "SELECT g, 'drawing-' || g || '.dxf', 1000, md5(g::text) || md5(g::text), "
                    "'file:///bench/' || g, now(), '{\"status\": \"succeeded\"}'::jsonb, 0, false "
                    "FROM generate_series(:start, :stop) g"
                ),
                {"start": start, "stop": stop},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO cloud_file_metadata (cloud_file_id, format, variant, extractor_version, "
                    "metadata, warnings, extracted_at) "
                    "SELECT g, 'dxf', 'ascii', '1.0.0', '{}'::jsonb, '[]'::jsonb, now() "
                    "FROM generate_series(:start, :stop) g"
                ),
                {"start": start, "stop": stop},
            )
            # Each text: a run of the shuffled word list at a pseudo-random offset, 150-600 words.
            conn.execute(
                sa.text(
                    "INSERT INTO cloud_file_text (cloud_file_id, text, char_count, truncated) "
                    "SELECT g, t.body, length(t.body), false FROM generate_series(:start, :stop) g "
                    "CROSS JOIN LATERAL (SELECT string_agg(word, ' ' ORDER BY n) AS body FROM words "
                    "WHERE n BETWEEN (g * 7919) % 1999000 + 1 "
                    "AND (g * 7919) % 1999000 + 150 + (g * 31) % 451) t"
                ),
                {"start": start, "stop": stop},
            )
        log(f"search: {stop}/{texts} texts stored")
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))
    engine.dispose()
    return time.perf_counter() - started


def measure_search(texts: int, repeat: int = 3) -> dict[str, Any]:
    from bench.deploy import create_database, drop_database
    from extraction_pipeline.persistence import migrate
    from extraction_pipeline.persistence.repository import CloudFileRepository

    url = create_database("ep_bench_search")
    try:
        migrate.upgrade(url)
        fill_s = _fill(url, texts)
        repository = CloudFileRepository.from_url(url)
        try:
            timings: dict[str, float] = {}
            hits: dict[str, int] = {}
            for query in QUERIES:
                best = float("inf")
                for _ in range(repeat):
                    started = time.perf_counter()
                    found = repository.search(query, limit=20)
                    best = min(best, time.perf_counter() - started)
                timings[query] = round(best * 1000, 2)
                hits[query] = len(found)
        finally:
            repository.dispose()
    finally:
        drop_database(url)
    values = sorted(timings.values())
    return {
        "texts": texts,
        "fill_s": round(fill_s, 1),
        "median_ms": round(statistics.median(values), 2),
        "max_ms": values[-1],
        "per_query_ms": timings,
        "hits": hits,
    }
