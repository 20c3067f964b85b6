"""The Makefile hands uv the indexes pip is configured with (tools/pip_indexes.py)."""
import os
import shlex

from tools.pip_indexes import uv_options

LISTED = """:env:.cert='/etc/ssl/certs/ca-certificates.crt'
:env:.find-links='/opt/wheels'
global.constraint='/etc/xdg/pip/constraints.txt'
global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'
global.find-links='/opt/wheels'
install.index-url='https://mirror.example/simple'"""


def test_every_index_and_wheel_folder_becomes_its_uv_option_once_in_pips_order():
    assert uv_options(LISTED) == ["--find-links", "/opt/wheels",
                                  "--extra-index-url", "file:///opt/pypi/simple",
                                  "--extra-index-url", "file:///opt/pypi-more/simple",
                                  "--index-url", "https://mirror.example/simple"]


def test_of_several_index_urls_only_the_one_pip_uses_is_given():
    """uv refuses --index-url twice; pip takes PIP_INDEX_URL over [install] over [global]."""
    both = "global.index-url='https://a.example/simple'\ninstall.index-url='https://b.example/simple'"
    assert uv_options(both) == ["--index-url", "https://b.example/simple"]
    assert uv_options(both + "\n:env:.index-url='https://c.example/simple'") == ["--index-url", "https://c.example/simple"]


def test_settings_that_name_no_location_are_left_to_pip():
    assert uv_options(":env:.cert='/etc/ssl/certs/ca.crt'\nglobal.timeout='60'\nglobal.constraint='c.txt'") == []
    assert uv_options("") == []


def test_the_command_reads_pips_own_configuration(python_process):
    # PIP_CONFIG_FILE=os.devnull: pip reads no configuration file, only the PIP_* variables given
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    alone = python_process("-m", "tools.pip_indexes", env=env, check=True)
    assert alone.stdout.strip() == ""
    configured = python_process("-m", "tools.pip_indexes", check=True,
                                env=env | {"PIP_EXTRA_INDEX_URL": "file:///a/simple file:///b/simple", "PIP_FIND_LINKS": "/w"})
    words = shlex.split(configured.stdout)
    assert sorted(zip(words[::2], words[1::2])) == [("--extra-index-url", "file:///a/simple"),
                                                    ("--extra-index-url", "file:///b/simple"), ("--find-links", "/w")]
