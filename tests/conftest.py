"""Shared pytest fixtures."""

import pytest

import rnnkit


@pytest.fixture
def restore_threads():
    n = rnnkit.get_num_threads()
    yield
    rnnkit.set_num_threads(n)
