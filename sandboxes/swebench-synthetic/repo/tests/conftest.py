"""Shared fixtures; importing the package here (as many projects' conftest files do) makes a
broken package fail test collection before any test runs."""

import pytest

import wordstats


@pytest.fixture
def sample_text():
    return wordstats.count_words.__doc__ or ""
