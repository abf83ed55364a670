"""Fixtures of the benchmark tests: bench/extract_overhead.py loaded as a module."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest

from extraction_pipeline_tests.corpus import REPO_ROOT

BENCH = REPO_ROOT / "bench" / "extract_overhead.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("extract_overhead", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module
