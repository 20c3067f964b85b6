"""The tiers themselves (pytest.ini): the quick tier cannot start Python without saying so."""
import subprocess
import sys

import pytest


@pytest.mark.parametrize("args, shell", [([sys.executable, "-c", "pass"], False), (["python3", "-c", "pass"], False),
                                         ("cd /tmp && python -c pass", True)], ids=["this one", "by name", "in a shell"])
def test_starting_python_outside_the_process_tier_fails_the_test(args, shell):
    with pytest.raises(AssertionError, match="use the python_process fixture"):
        subprocess.run(args, shell=shell)
    assert subprocess.run(["true"]).returncode == 0  # other programs (git, dvc's own tools) start as before


def test_the_process_tier_starts_python(python_process, request):
    assert request.node.get_closest_marker("process")
    result = python_process("-c", "import sys; print(sys.argv[1])", "started")
    assert result.returncode == 0 and result.stdout == "started\n"


def test_a_hanging_test_is_given_a_timeout(request):
    """That a hanging test then fails is pytest-timeout's own behaviour: this checks the plugin is
    loaded (its ini key, unknown and an error without it) and the limit set."""
    assert 0 < int(request.config.getini("timeout")) <= 600
