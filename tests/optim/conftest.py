import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def _one_thread():
    # The optimizer tests use tiny tensors: extra threads only add contention on a shared machine.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
