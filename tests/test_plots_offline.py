"""`dvc plots show` / `dvc plots diff` pages render every chart with the network blocked.

Real DVC in a copy of the tiny project, the page template made by tools/plots_page.py, opened in
Debian's headless Chromium with every request that is not a local file aborted."""
import csv
import json

from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tools.plots_page import TEMPLATE_PATH

LOCAL_SCHEMES = ("file:", "data:", "blob:")

# Each container DVC puts in the page's <main id="plots">: an image gallery (its <img> loaded), or
# a vega chart (an <svg> holding data marks: vega gives a spec's own marks role "mark", unlike the
# axes, legends and titles around them). Generic on purpose: new plots in dvc.yaml are covered.
CONTAINERS_STATE = """() => Array.from(document.querySelectorAll("#plots > div")).map(div => {
  const images = Array.from(div.querySelectorAll("img"));
  return {
    id: div.id,
    images: images.length,
    images_loaded: images.filter(img => img.complete && img.naturalWidth > 0).length,
    svgs: div.querySelectorAll("svg").length,
    data_marks: div.querySelectorAll("svg g.role-mark > *").length,
    failed: div.classList.contains("plot-error") || div.querySelector(".plot-error") !== null,
    text: div.innerText.slice(0, 2000),
  };
})"""

ALL_DRAWN = f"""() => ({CONTAINERS_STATE})().every(c =>
  c.failed || (c.images > 0 ? c.images_loaded === c.images : c.data_marks > 0))"""


def open_offline(browser, html_path, screenshot_path) -> tuple[list[dict], dict]:
    """Open `html_path` with the network cut off; the state of each plot container, and what went wrong."""
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    problems = {"blocked": [], "failed": [], "errors": []}

    def only_local(route):
        if route.request.url.startswith(LOCAL_SCHEMES):
            route.continue_()
        else:
            problems["blocked"].append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.on("requestfailed", lambda request: problems["failed"].append(request.url))
    page.on("pageerror", lambda error: problems["errors"].append(str(error)))
    # Errors only: DVC's own v5 templates make vega log harmless warnings (e.g. a spec's version).
    page.on("console", lambda message: message.type == "error" and problems["errors"].append(message.text))
    page.goto(html_path.as_uri(), wait_until="load")
    try:
        page.wait_for_function(ALL_DRAWN, timeout=20_000)
    except PlaywrightTimeout:  # the assertions below say which container is blank
        pass
    page.screenshot(path=str(screenshot_path), full_page=True)
    containers = page.evaluate(CONTAINERS_STATE)
    page.close()
    return containers, problems


def plot_ids(project, *command) -> list[str]:
    """The plots DVC itself loads for `command` (`show` or `diff REV`): one container each on the page."""
    return list(json.loads(project.dvc("plots", *command, "--json").stdout)["data"])


def assert_all_rendered(containers, problems, expected_ids) -> None:
    assert problems == {"blocked": [], "failed": [], "errors": []}
    assert len(containers) == len(expected_ids), (containers, expected_ids)
    for container in containers:
        assert not container["failed"], container
        if container["images"]:
            assert container["images_loaded"] == container["images"], container
        else:
            assert container["svgs"] >= 1 and container["data_marks"] > 0, container


def test_plots_show_renders_every_chart_offline(tiny, browser, tmp_path):
    tiny.run("python", "-m", "tools.plots_page")  # as the Makefile's venv step does
    result = tiny.dvc("plots", "show")
    page = tiny.path / "dvc_plots" / "index.html"
    assert result.stdout.strip() == page.as_uri()
    assert "cdn.jsdelivr" not in page.read_text()

    containers, problems = open_offline(browser, page, tmp_path / "plots_show.png")

    assert_all_rendered(containers, problems, plot_ids(tiny, "show"))
    charts = [c for c in containers if not c["images"]]
    assert len(charts) >= 4 and sum(1 for c in containers if c["images"]) >= 2  # curves, matrices; galleries


def test_plots_diff_renders_both_revisions_offline(tiny, browser, tmp_path):
    tiny.run("git", "add", "-A")
    tiny.run("git", "commit", "-q", "-m", "tiny build")
    # A change to compare with: the curves and the confusion data move, as after another run.
    curve = tiny.path / "metrics/mlp/train/plots/metrics/val/acc.tsv"
    rows = list(csv.DictReader(curve.open(), delimiter="\t"))
    curve.write_text("step\tacc\n" + "".join(f"{r['step']}\t{float(r['acc']) * 0.9}\n" for r in rows))
    confusion = tiny.path / "metrics/cnn/confusion.csv"
    lines = confusion.read_text().splitlines()
    confusion.write_text("\n".join(lines[:1] + [line[:-1] + "3" for line in lines[1:21]] + lines[21:]) + "\n")

    tiny.run("python", "-m", "tools.plots_page")
    result = tiny.dvc("plots", "diff", "main")
    page = tiny.path / "dvc_plots" / "index.html"
    assert result.stdout.strip() == page.as_uri()

    containers, problems = open_offline(browser, page, tmp_path / "plots_diff.png")

    assert_all_rendered(containers, problems, plot_ids(tiny, "diff", "main"))
    galleries = [c for c in containers if c["images"]]
    assert galleries and all(c["images"] == 2 for c in galleries)  # main's and the workspace's
    for container in containers:  # each chart's legend or facets, each gallery's captions
        assert "main" in container["text"] and "workspace" in container["text"], container


def test_plots_show_without_the_template_fails_and_writes_no_page(tiny):
    assert not (tiny.path / TEMPLATE_PATH).exists()  # as in a fresh clone before `make`
    result = tiny.dvc("plots", "show", check=False)
    # DVC's own words (it takes the missing path for the template's text); no half-made page.
    assert result.returncode != 0
    assert "HTML template has to contain '{plot_divs}'" in result.stderr
    assert not (tiny.path / "dvc_plots/index.html").exists()


def test_template_inlines_the_libraries_and_keeps_dvcs_placeholders(tmp_path):
    from tools.plots_page import write_template

    page = write_template(tmp_path / "page.html").read_text()
    assert page.count("{plot_divs}") == 1 and page.count("{refresh_tag}") == 1
    assert "{scripts}" not in page  # DVC would put its CDN <script> tags there
    assert "window.vegaEmbed=" in page and "<script src" not in page.lower()
