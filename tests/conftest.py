import json
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def _shared(variable, folder, what):
    path = Path(os.environ.get(variable, REPO.parent / "shared" / folder))
    if not path.is_dir():
        pytest.skip(f"{what} not found at {path}; set {variable} to the shared {folder} folder")
    return path


@pytest.fixture(scope="session")
def data_dir():
    """The shared real data (MNIST, CIFAR-10, rt-polarity, images): $DANLU_DATA or ../shared/data."""
    return _shared("DANLU_DATA", "data", "real data")


@pytest.fixture(scope="session")
def spec_dir():
    """The shared specification files (official key lists, reference notes): $DANLU_SPEC or ../shared/spec."""
    return _shared("DANLU_SPEC", "spec", "spec folder")


@pytest.fixture(scope="session")
def tnt_spec(spec_dir):
    """The official TNT / PyramidTNT state-dict keys and shapes."""
    path = spec_dir / "tnt_official_state_dicts.json"
    if not path.is_file():
        pytest.skip(f"official state-dict spec not found at {path}; set DANLU_SPEC to the shared spec folder")
    return json.loads(path.read_text())


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """The tests use small tensors: on 2 cores, a second OpenMP thread costs more in hand-offs (and in
    spinning against other processes) than it gains."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
