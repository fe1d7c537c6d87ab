"""Shared fixtures: the repository root, the `../shared` real-data folder (tests skip without it)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
WVS7 = SHARED / "data" / "wvs7"
RELEASE = SHARED / "data" / "dvmap_release"


def require_shared(path: Path) -> Path:
    """Skip the calling test cleanly when a file from ../shared is not available."""
    if not path.exists():
        pytest.skip(f"{path} not available (../shared is absent in a fresh clone)")
    return path


@pytest.fixture
def repo() -> Path:
    return REPO
