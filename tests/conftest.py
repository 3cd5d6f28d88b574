"""Fixtures for the whole suite: the real encoder (loaded once per session) and the fake one.

What the fixtures build lives in ``tests/fixtures/`` and ``tests/fakes.py``; tests import it from there.
"""

from __future__ import annotations

import pytest

# The fixture modules hold assertions (e.g. reopened_records); rewrite them like a test's own.
pytest.register_assert_rewrite("tests.fixtures", "tests.fakes")

from tests.fakes import TRIGRAM, FakeEncoder  # noqa: E402


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder(**TRIGRAM)


@pytest.fixture(scope="session")
def real_encoder():
    from engine.encoders.minilm import MiniLMEncoder

    return MiniLMEncoder()
