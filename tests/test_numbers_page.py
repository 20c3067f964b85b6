"""The draw-a-digit page with numbers people draw: digits that touch, and a number written in one
continuous line. Debian's Chromium driven by Playwright against a real server with the quick
models (the line model included), drawing with mouse events as a user would."""
from tests.test_page import draw

# "174" with the 7's bar starting on the 1's top: one piece of ink for "17" (the per-digit
# reader alone read this "04").
ONE_SEVEN_FOUR = [
    [(0.14, 0.22), (0.14, 0.80)],
    [(0.14, 0.22), (0.32, 0.22), (0.22, 0.80)],
    [(0.46, 0.22), (0.39, 0.60), (0.54, 0.60)],
    [(0.50, 0.40), (0.50, 0.80)],
]

# "2026" without lifting the pen: each digit's end joined to the next one's start.
TWO_ZERO_TWO_SIX = [[
    (0.05, 0.32), (0.09, 0.23), (0.15, 0.21), (0.19, 0.27), (0.18, 0.38), (0.05, 0.78), (0.20, 0.78),   # 2
    (0.27, 0.40), (0.30, 0.24), (0.34, 0.21), (0.38, 0.30), (0.39, 0.55), (0.36, 0.75), (0.32, 0.79),   # 0
    (0.28, 0.72), (0.27, 0.45), (0.30, 0.24),
    (0.44, 0.25), (0.49, 0.21), (0.55, 0.24), (0.56, 0.36), (0.44, 0.78), (0.58, 0.78),                 # 2
    (0.70, 0.22), (0.65, 0.40), (0.63, 0.62), (0.66, 0.77), (0.71, 0.79), (0.75, 0.70), (0.74, 0.58),   # 6
    (0.69, 0.54), (0.64, 0.62),
]]


def read_drawing(browser, live_server, strokes, tmp_path, name) -> str:
    """What the page shows after drawing `strokes`, once its last request is answered."""
    page = browser.new_page(viewport={"width": 800, "height": 760})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(live_server)
    draw(page, strokes)
    page.wait_for_function("document.getElementById('number').textContent !== '–'", timeout=10_000)
    page.wait_for_load_state("networkidle")  # the page reads after every stroke: the last answer shown
    page.screenshot(path=str(tmp_path / f"{name}.png"))
    assert errors == [], errors
    return page.locator("#number").text_content()


def test_drawing_174_with_touching_strokes_reads_174(browser, live_server, tmp_path):
    assert read_drawing(browser, live_server, ONE_SEVEN_FOUR, tmp_path, "page-174") == "174"


def test_drawing_2026_in_one_continuous_line_reads_2026(browser, live_server, tmp_path):
    assert read_drawing(browser, live_server, TWO_ZERO_TWO_SIX, tmp_path, "page-2026") == "2026"
