"""Shared test settings."""
import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: intra-op threads only add contention on a 2-core CPU (13 s vs 1 s measured
    for a tiny GAN test while other jobs ran; OpenMP threads spin against them)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
