import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir():
    """The shared real data (MNIST, CIFAR-10, rt-polarity, images): $DANLU_DATA or ../shared/data."""
    path = Path(os.environ.get("DANLU_DATA", REPO.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.skip(f"real data not found at {path}; set DANLU_DATA to the shared data folder")
    return path


@pytest.fixture(scope="session")
def spec_dir():
    """The shared specification files (official key lists, reference notes): $DANLU_SPEC or ../shared/spec."""
    path = Path(os.environ.get("DANLU_SPEC", REPO.parent / "shared" / "spec"))
    if not path.is_dir():
        pytest.skip(f"spec folder not found at {path}; set DANLU_SPEC to the shared spec folder")
    return path


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
