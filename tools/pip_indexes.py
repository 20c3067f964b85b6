"""The package indexes pip is configured with, as uv's command-line options.

The Makefile installs the environment with uv, which does not read pip's configuration; a machine
may point pip at local copies of large wheels (this project's machines keep torch's there, and
a download of them from PyPI is several GB). This prints `--index-url`, `--extra-index-url` and
`--find-links` options for every location in `pip config list` (files and PIP_* variables), so
that uv looks where pip would. Nothing configured: nothing printed, and uv uses PyPI.

    uv pip install $(python -m tools.pip_indexes) -r requirements.txt
"""
import shlex
import subprocess
import sys

# pip's setting -> uv's option
OPTIONS = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links"}


def uv_options(config_list: str) -> list[str]:
    """uv's options for the `pip config list` lines given (`section.key='value'`; a value may hold
    several locations, separated by whitespace), each location once, in pip's order."""
    pairs = []
    for line in config_list.splitlines():
        key, _, value = line.partition("=")
        option = OPTIONS.get(key.rpartition(".")[2])
        if option is None:
            continue
        for location in " ".join(shlex.split(value)).split():
            if (option, location) not in pairs:
                pairs.append((option, location))
    return [part for pair in pairs for part in pair]


def main() -> None:
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    print(" ".join(shlex.quote(part) for part in uv_options(listed.stdout if listed.returncode == 0 else "")))


if __name__ == "__main__":
    main()
