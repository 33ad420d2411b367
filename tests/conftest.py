import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # so tests can `import helpers`


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session unpacks/decodes into its own cache, never into the user's."""
    monkeypatch.setenv("MIMKD_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.delenv("MIMKD_DATA", raising=False)
    monkeypatch.setenv("MIMKD_TENSORBOARD", "0")  # runs write no event files unless a test asks for them
