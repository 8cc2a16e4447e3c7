"""Fixtures of the integration tests that start real processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.queue_helpers import Procs


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    """Processes a test starts (Redis servers, workers, APIs); all killed at teardown."""
    p = Procs(tmp_path)
    yield p
    p.stop()
