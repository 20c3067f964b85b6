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


class FakeItem:
    def __init__(self, name, tier=None):
        self.name, self.tier = name, tier

    def get_closest_marker(self, tier):
        return tier == self.tier or None


def test_each_worker_share_holds_its_part_of_every_tier_slowest_first():
    from tests.conftest import in_equal_shares

    items = [FakeItem(f"quick{i}") for i in range(7)] + [FakeItem(f"server{i}", "server") for i in range(3)] + \
        [FakeItem(f"e2e{i}", "e2e") for i in range(3)]
    ordered = in_equal_shares(items, 3)
    assert sorted(item.name for item in ordered) == sorted(item.name for item in items)  # nothing lost or doubled
    shares = [ordered[0:4], ordered[4:8], ordered[8:13]]   # the consecutive shares worksteal hands out: 13 // 3, 9 // 2, 5
    for share in shares:
        assert [item.tier for item in share[:2]] == ["e2e", "server"]   # every worker starts on a pipeline, then a server
        assert all(item.tier is None for item in share[2:])
    assert [item.name for item in in_equal_shares(items, 1)][:3] == ["e2e0", "e2e1", "e2e2"]  # one process: slowest first
