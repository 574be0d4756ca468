import pytest

from tests.conftest import adapter_under_test


@pytest.fixture(scope="session")
def adapter_name() -> str:
    """The adapter whose process this is (the driver sets RNNBENCH_TEST_ADAPTER)."""
    return adapter_under_test()
