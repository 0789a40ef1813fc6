import uuid

import pytest

from helpers import remove_stack  # noqa: E402  (tests/integration is on sys.path via rootdir conftest)


@pytest.fixture
def stack():
    """A stack name of the test's own, removed (containers, networks, volumes) afterwards."""
    name = "cwtest-" + uuid.uuid4().hex[:8]
    yield name
    remove_stack(name)
