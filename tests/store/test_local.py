import pytest

from batchcast.runs.store import ArtifactStore
from batchcast.testing.store import StoreContract, commit_with_file


class TestLocalStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path):
        return ArtifactStore(str(tmp_path / "artifacts"))


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path):
        s = ArtifactStore(f"memory://{tmp_path.name}")
        yield s
        if s.fs.exists(s.root):
            s.fs.rm(s.root, recursive=True)


def test_layout_on_disk(tmp_path):
    store = ArtifactStore(str(tmp_path / "a"))
    m = commit_with_file(store, tmp_path)
    folder = tmp_path / "a" / "svc" / "1" / "training" / m.run_ts
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "output"]
    assert not list(folder.glob("*.tmp"))
