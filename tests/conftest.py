"""Shared fixtures: the repository root, the `../shared` real-data folder (tests skip without it)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
WVS7 = SHARED / "data" / "wvs7"
RELEASE = SHARED / "data" / "dvmap_release"
#: Environment for subprocesses that load models: never reach for a hub.
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def require_shared(path: Path) -> Path:
    """Skip the calling test cleanly when a file from ../shared is not available."""
    if not path.exists():
        pytest.skip(f"{path} not available (../shared is absent in a fresh clone)")
    return path


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny seeded model of SmolLM2's architecture with its tokenizer, built once a session (see tiny_model.py)."""
    from .tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-smollm2") / "model")
