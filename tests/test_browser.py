"""The app in a real browser (Debian's Chromium driven by Playwright): every tab, its default action,
an animation or samples on the page, and the scrub slider changing the shown frame. Screenshots of
each tab go to `test-artifacts/`.

On the tiny test checkpoints by default; `UDM_SCREENSHOTS=assets python -m pytest tests/test_browser.py`
runs the same test on the shipped models and writes the README's screenshots into `assets/`."""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
# tab, its button, its scrub slider, whether a run ends with an animation (a GIF)
TABS = [
    ("Hot diffusion", "Generate", "scrub the trajectory", True),
    ("Cold diffusion", "Run naive and improved", "scrub the trajectory", True),
    ("Edit", "Run both rules", "scrub the steps", False),
    ("Mask", "Run both rules", "scrub the steps", False),
    ("Encoding", "Generate", "scrub the trajectory", True),
    ("Compare", "Run side by side", "scrub all trajectories together", True),
]
ROOT = Path(__file__).resolve().parent.parent
SHIPPED = bool(os.environ.get("UDM_SCREENSHOTS"))
SHOTS = ROOT / os.environ["UDM_SCREENSHOTS"] if SHIPPED else ROOT / "test-artifacts"


def _browser_or_skip():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not shutil.which(CHROMIUM):
        if os.environ.get("CI"):  # CI installs both (.ci/run): their absence there is a failure
            pytest.fail("Playwright or Debian's chromium is missing; .ci/run installs them")
        pytest.skip("Playwright and /usr/bin/chromium are needed (apt-get install chromium; pip install playwright)")
    return sync_playwright


@pytest.fixture(scope="module")
def url(request):
    """The app on the tiny checkpoints, or on the shipped ones for the README's screenshots."""
    if not SHIPPED:
        return request.getfixturevalue("app_url")
    from bench import serve

    port = serve.free_port()
    proc, _ = serve.start(port)
    request.addfinalizer(lambda: serve.stop(proc))
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def browser(url):
    sync_playwright = _browser_or_skip()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


def _open(browser, url, width, height):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(120_000)
    page.goto(url)
    page.wait_for_selector("button[role=tab]")
    return page


@pytest.fixture(scope="module")
def page(browser, url):
    """The app at a desktop size (1400 × 1000)."""
    page = _open(browser, url, 1400, 1000)
    yield page
    page.close()


@pytest.fixture(scope="module")
def phone(browser, url):
    """The app at a phone's size (390 × 844)."""
    page = _open(browser, url, 390, 844)
    yield page
    page.close()


def _shown(page, panel) -> tuple:
    """What the tab shows: the content (not the file names, new for every response) of its images, and the
    text of its tables."""
    import hashlib

    imgs, tables = panel.locator("img[src*='file=']"), panel.locator("table")
    srcs = [imgs.nth(i).get_attribute("src") for i in range(imgs.count())]
    return (
        tuple(hashlib.sha1(page.request.get(src).body()).hexdigest() for src in srcs),
        tuple(tables.nth(i).inner_text() for i in range(tables.count())),
    )


@pytest.mark.parametrize("tab,button,slider,animated", TABS)
def test_tab_runs_and_scrubs_in_a_browser(page, tab, button, slider, animated):
    page.get_by_role("tab", name=tab).click()
    panel = page.locator("[role=tabpanel]:visible").first
    panel.get_by_role("button", name=button).first.click()
    scrub = panel.get_by_label(f"range slider for {slider}").first
    # the run is over when the scrub slider has been given the trajectory's length
    page.wait_for_function("(el) => Number(el.max) > 1 && !el.disabled", arg=scrub.element_handle())
    if animated:
        panel.locator("img[src*='.gif']").first.wait_for(state="visible")
    images, tables = _shown(page, panel)
    assert images or any(t.strip() for t in tables), f"{tab}: no samples or animation on the page"
    SHOTS.mkdir(parents=True, exist_ok=True)
    name = tab.lower().split()[0]
    page.screenshot(path=str(SHOTS / f"tab-{name}.png"), full_page=True)
    before = _shown(page, panel)
    scrub.scroll_into_view_if_needed()
    box = scrub.bounding_box()
    page.mouse.click(box["x"] + 1, box["y"] + box["height"] / 2)  # to the first frame
    page.wait_for_function("(el) => Number(el.value) === 0", arg=scrub.element_handle())
    page.wait_for_timeout(300)
    for _ in range(50):
        if _shown(page, panel) != before:
            break
        page.wait_for_timeout(200)
    assert _shown(page, panel) != before, f"{tab}: the scrub slider did not change the shown frame"


def test_cold_restores_a_digit_drawn_in_the_browser(page):
    page.get_by_role("tab", name="Cold diffusion").click()
    panel = page.locator("[role=tabpanel]:visible").first
    panel.get_by_label("restore", exact=True).check()
    panel.get_by_role("button", name="Brush").first.click()
    canvas = panel.locator("canvas").first
    box = canvas.bounding_box()
    x, y0, y1 = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.2, box["y"] + box["height"] * 0.8
    page.mouse.move(x, y0)
    page.mouse.down()
    for k in range(1, 21):  # a stroke from top to bottom: a "1"
        page.mouse.move(x + k, y0 + (y1 - y0) * k / 20)
    page.mouse.up()
    page.wait_for_timeout(500)
    panel.get_by_role("button", name="Run naive and improved").first.click()
    page.get_by_text("copies of your digit").first.wait_for(state="visible")
    page.screenshot(path=str(SHOTS / "tab-cold-your-digit.png"), full_page=True)


def _tab(page, tab):
    page.get_by_role("tab", name=tab).click()
    return page.locator("[role=tabpanel]:visible").first


@pytest.mark.parametrize("tab", [*(t[0] for t in TABS), "Lab"])
def test_the_math_is_rendered_and_the_page_never_scrolls_sideways(page, tab):
    panel = _tab(page, tab)
    panel.get_by_text("The math").first.click()
    math = panel.locator(".katex")
    math.first.wait_for(state="visible")
    shown = panel.inner_text()
    assert math.count() >= 1 and "$" not in shown and "\\bar" not in shown and "\\hat" not in shown
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400


def test_on_a_phone_every_tab_is_reachable_and_x_t_sits_beside_x0_hat(phone):
    for tab in [*(t[0] for t in TABS), "Lab"]:
        phone.get_by_role("tab", name=tab).click()
        assert phone.get_by_role("tab", name=tab).get_attribute("aria-selected") == "true"
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390, f"{tab} scrolls sideways"
    panel = _tab(phone, "Hot diffusion")
    panel.get_by_role("button", name="Generate").first.click()
    scrub = panel.get_by_label("range slider for scrub the trajectory").first
    phone.wait_for_function("(el) => Number(el.max) > 1 && !el.disabled", arg=scrub.element_handle())
    x_t, x0_hat = (panel.locator("img[src*='file=']").nth(i).bounding_box() for i in range(2))
    assert abs(x_t["y"] - x0_hat["y"]) < 5 and x0_hat["x"] > x_t["x"] + x_t["width"] / 2
    assert min(x_t["width"], x0_hat["width"]) > 120
    SHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SHOTS / "phone-hot.png"), full_page=True)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390


def test_an_example_click_runs(page):
    panel = _tab(page, "Mask")
    panel.get_by_role("button", name="fill the blanks of c?a?e").click()
    panel.get_by_text("pattern c?a?e, seed 0").first.wait_for(state="visible")  # the run's last message
    assert panel.get_by_label("pattern (optional)").input_value() == "c?a?e"
    rows = panel.locator("table tr").all_inner_texts()[1:]
    finals = [r.split("\t")[-1].split()[0] for r in rows]  # the improved rule's last column (without ✓ / ★)
    assert finals and all(w[0] == "c" and w[2] == "a" and w[4] == "e" for w in finals)


def test_an_error_shows_the_input_as_text_and_keeps_the_results(page):
    panel = _tab(page, "Mask")
    panel.get_by_label("pattern (optional)").fill("")
    panel.get_by_role("button", name="Run both rules").first.click()
    panel.get_by_text("12 words shown").first.wait_for(state="visible")  # the run's last message
    before = _shown(page, panel)
    panel.get_by_label("pattern (optional)").fill("<b>?</b>")
    panel.get_by_role("button", name="Run both rules").first.click()
    toast = page.get_by_text("<b>?</b>", exact=False).first  # shown as typed, not as bold markup
    toast.wait_for(state="visible")
    assert page.locator(".toast-body b, [data-testid=toast-body] b").count() == 0
    page.wait_for_timeout(500)
    assert _shown(page, panel) == before


def test_play_pause_and_step_move_the_scrub_slider(page):
    panel = _tab(page, "Edit")
    panel.get_by_role("button", name="Run both rules").first.click()
    scrub = panel.get_by_label("range slider for scrub the steps").first
    # the run is over when the slider has its range, is enabled and stands at the last frame
    ready = "(el) => Number(el.max) > 1 && !el.disabled && Number(el.value) === Number(el.max)"
    page.wait_for_function(ready, arg=scrub.element_handle())
    last = int(scrub.get_attribute("max"))
    panel.get_by_role("button", name="◀ step").click()
    page.wait_for_function(f"(el) => Number(el.value) === {last - 1}", arg=scrub.element_handle())
    panel.get_by_text(f"step {last}/{last + 1}:").first.wait_for(state="visible")  # the caption came along
    panel.get_by_role("button", name="▶ play").click()
    page.wait_for_function(f"(el) => Number(el.value) === {last}", arg=scrub.element_handle())
    panel.get_by_role("button", name="▶ play").click()  # from the end it plays again from the start
    page.wait_for_function(f"(el) => Number(el.value) === {last}", arg=scrub.element_handle())
    panel.get_by_text(f"step {last + 1}/{last + 1}:").first.wait_for(state="visible")


def test_lab_draw_points_train_stop_and_sample_every_rule(page):
    """Draw a shape, train on its ink a few seconds, stop, and sample with every rule."""
    panel = _tab(page, "Lab")
    panel.get_by_label("data").first.click()
    page.get_by_role("option", name="your drawing (points)").click()
    panel.get_by_role("button", name="Brush").first.click()
    canvas = panel.locator("canvas").first
    box = canvas.bounding_box()
    x0, y0 = box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.5
    page.mouse.move(x0, y0)
    page.mouse.down()
    for k in range(1, 31):  # a wavy stroke left to right
        page.mouse.move(x0 + box["width"] * 0.6 * k / 30, y0 + 40 * (-1) ** (k // 5))
    page.mouse.up()
    panel.get_by_text("noise on drawing").first.wait_for(state="visible")  # the rules follow the drawing
    budget = panel.get_by_label("number input for training budget (seconds)")
    budget.fill("60")
    budget.press("Enter")
    panel.get_by_role("button", name="Train").click()
    panel.get_by_text("Training").first.wait_for(state="visible")
    page.wait_for_timeout(3000)
    panel.get_by_role("button", name="Stop").click()
    panel.get_by_text("Trained").first.wait_for(state="visible", timeout=30_000)
    steps = panel.get_by_label("steps K (points, images)")
    steps.fill("10")
    panel.get_by_role("button", name="Sample with every rule").click()
    scrub = panel.get_by_label("range slider for scrub all rules together").first
    page.wait_for_function("(el) => Number(el.max) > 1 && !el.disabled", arg=scrub.element_handle())
    for rule in ("naive", "improved", "ddpm"):  # the rules that apply, in the table
        panel.get_by_text(f"{rule}, 10 steps", exact=True).first.wait_for(state="visible")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "tab-lab.png"), full_page=True)
