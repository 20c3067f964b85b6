"""The tiers themselves (pytest.ini): the quick tier cannot start Python without saying so."""
import subprocess
import sys

import pytest


def test_starting_python_outside_the_process_tier_fails_the_test():
    with pytest.raises(AssertionError, match="use the python_process fixture"):
        subprocess.run([sys.executable, "-c", "pass"])
    assert subprocess.run(["true"]).returncode == 0  # other programs (git, dvc's own tools) start as before


def test_the_process_tier_starts_python(python_process, request):
    assert request.node.get_closest_marker("process")
    result = python_process("-c", "import sys; print(sys.argv[1])", "started")
    assert result.returncode == 0 and result.stdout == "started\n"


def test_a_test_that_hangs_fails_instead_of_holding_the_suite(request):
    # pytest-timeout's ini key: unknown, and an error, were the plugin missing
    assert 0 < int(request.config.getini("timeout")) <= 600
