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
# Where one `index-url` is set in several places, pip installs from the one that comes first here
# (a PIP_INDEX_URL variable, then the [install] section, then [global]); uv refuses two.
INDEX_URL_PRECEDENCE = (":env:", "install", "global")


def uv_options(config_list: str) -> list[str]:
    """uv's options for the `pip config list` lines given (`section.key='value'`; a value may hold
    several locations, separated by whitespace), each location once, in pip's order; of several
    `index-url`s, the one pip uses."""
    pairs, index_urls = [], {}
    for line in config_list.splitlines():
        key, _, value = line.partition("=")
        section, _, name = key.rpartition(".")
        option = OPTIONS.get(name)
        if option is None:
            continue
        locations = " ".join(shlex.split(value)).split()
        if option == "--index-url":
            index_urls[section] = locations[-1:]
            continue
        for location in locations:
            if (option, location) not in pairs:
                pairs.append((option, location))
    used = next((index_urls[s] for s in INDEX_URL_PRECEDENCE if s in index_urls), [])
    pairs += [("--index-url", location) for location in used]
    return [part for pair in pairs for part in pair]


def main() -> None:
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    print(" ".join(shlex.quote(part) for part in uv_options(listed.stdout if listed.returncode == 0 else "")))


if __name__ == "__main__":
    main()
