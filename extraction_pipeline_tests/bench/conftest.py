"""Fixtures of the benchmark tests: the ``bench.extract_overhead`` module."""

from __future__ import annotations

from types import ModuleType

import pytest

from bench import extract_overhead


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return extract_overhead
