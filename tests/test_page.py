"""The draw-a-digit page in a real browser: Debian's Chromium driven by Playwright, against a
real server. Draws with mouse events on the canvas and uploads a file, as a user would."""
import pytest


def draw(page, strokes):
    """Each stroke is a list of (x, y) points, as fractions of the canvas's width and height."""
    box = page.locator("#ink").bounding_box()
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=8)
        page.mouse.up()


SEVEN = [[(0.10, 0.22), (0.27, 0.22), (0.17, 0.80)]]
ONE = [[(0.45, 0.18), (0.45, 0.82)]]


def test_drawing_reads_the_number_as_it_is_drawn_and_clear_resets(browser, live_server, tmp_path):
    page = browser.new_page(viewport={"width": 800, "height": 760})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("requestfailed", lambda request: errors.append(request.url))
    page.goto(live_server)
    draw(page, SEVEN)
    page.wait_for_function("document.getElementById('number').textContent === '7'", timeout=10_000)
    draw(page, ONE)
    page.wait_for_function("document.getElementById('number').textContent === '71'", timeout=10_000)
    assert page.locator(".digit").count() == 2
    first = page.locator(".digit").first
    assert first.locator(".fill").count() == 10  # a bar per class
    page.wait_for_timeout(300)  # the bars' width transition
    best, track = first.locator(".best .fill").bounding_box(), first.locator(".best.track").bounding_box()
    probability = float(first.locator(".best.value").text_content().rstrip("%")) / 100
    assert best["width"] == pytest.approx(probability * track["width"], abs=2)  # the bar shows the probability
    page.screenshot(path=str(tmp_path / "page-drawn.png"))
    page.click("#clear")
    assert page.locator("#number").text_content() == "–"
    assert page.locator(".digit").count() == 0
    assert errors == []


def test_uploading_a_photo_shows_its_result(browser, live_server, tmp_path, mnist_test_digits, paper):
    photo = tmp_path / "number.jpg"
    paper(mnist_test_digits[0][[1, 3, 1, 2]], gaps=[9, 5, 12]).convert("RGB").save(photo, quality=90)  # 2021
    garbage = tmp_path / "notes.png"
    garbage.write_bytes(b"not an image at all")
    page = browser.new_page(viewport={"width": 800, "height": 760})
    page.goto(live_server)
    page.set_input_files("#upload", str(photo))
    page.wait_for_function("document.getElementById('number').textContent === '2021'", timeout=10_000)
    assert "number.jpg" in page.locator("#status").text_content()
    page.screenshot(path=str(tmp_path / "page-uploaded.png"))
    page.set_input_files("#upload", str(garbage))
    page.wait_for_function("document.getElementById('status').classList.contains('error')", timeout=10_000)
    assert "not a readable image" in page.locator("#status").text_content()


def test_the_api_docs_draw_the_predict_operations_with_the_network_blocked(browser, live_server, tmp_path):
    """Swagger UI's JS and CSS come from the server itself (fastapi-offline), not a CDN."""
    from urllib.parse import urlsplit

    blocked, errors = [], []
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    page.on("pageerror", lambda error: errors.append(str(error)))

    def only_loopback(route):
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost", "::1"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", only_loopback)
    page.goto(live_server + "/docs")
    page.locator('.opblock-post .opblock-summary-path[data-path="/predict"]').wait_for(timeout=15_000)
    assert page.locator('.opblock-post .opblock-summary-path[data-path="/predict/batch"]').count() == 1
    assert page.locator(".opblock-get .opblock-summary-path", has_text="/health").count() == 1
    page.screenshot(path=str(tmp_path / "docs.png"))
    assert blocked == [] and errors == []
