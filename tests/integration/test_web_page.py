"""The search web page in a real headless Chromium (Debian's chromium + chromedriver, Selenium).

No browser or driver is downloaded: the test drives ``/usr/bin/chromium`` through
``/usr/bin/chromedriver`` and skips, saying so, when either is missing. Screenshots go to the
test's tmp dir and, when ``DESCRIBEME_TEST_ARTIFACTS`` is set, are copied there.
"""

from __future__ import annotations

import io
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from describeme.messages import PartDescription as P
from describeme.messages import TrackDescription, TrackEvent
from describeme.operators.store import TrackStore
from describeme.service.app import ServeSettings, build_app
from describeme.service.backend import StoreBackend
from describeme.service.server import BackgroundServer

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
MARKUP_STREAM = 'cam-<b id="injected">x</b>'  # must show as text, never become an element
WAIT_S = 15
TOKEN = "web-page-token-0123456789"


def jpeg(color: tuple[int, int, int]) -> bytes:
    """A real 32x64 JPEG, so the browser must decode it (naturalWidth > 0)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 64), color).save(buffer, format="JPEG")
    return buffer.getvalue()


def track(track_id: int, parts: list[P], stream: str = "cam-a") -> TrackDescription:
    return TrackDescription(
        stream_id=stream, track_id=track_id, frame_index=100, pts=4.0, first_seen=0.0,
        last_seen=4.0, first_seen_time=1_800_000_000.0, last_seen_time=1_800_000_060.0,
        parts=parts, sentence=f"person {track_id} on {stream}", quality=0.8,
        thumbnail=jpeg((200, 30 * track_id, 40)), num_observations=50, final=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def store(redis_server: Any) -> Iterator[TrackStore]:
    client = redis_server.client()
    store = TrackStore(client, prefix=f"web{uuid.uuid4().hex[:8]}:")
    store.ensure_index()
    store.upsert_many([
        track(1, [P("upper-clothes", 0.95, "red", 0.9, "long", 0.9),
                  P("pants", 0.9, "blue", 0.9, "long", 0.9)]),
        track(2, [P("upper-clothes", 0.9, "red", 0.6, "long", 0.9),
                  P("pants", 0.9, "dark", 0.9, "long", 0.9,
                    shares={"color": {"dark": 0.6, "blue": 0.25}})]),
        track(3, [P("coat", 0.9, "green", 0.9, "long", 0.9)], stream=MARKUP_STREAM),
    ])  # fmt: skip
    store.append_events([TrackEvent("cam-a", 1, 10, 0.4, "appeared", ""),
                         TrackEvent("cam-a", 1, 95, 3.8, "changed", "jacket off")])  # fmt: skip
    store.wait_indexed()
    try:
        yield store
    finally:
        client.close()


@pytest.fixture(scope="module")
def server(store: TrackStore) -> Iterator[BackgroundServer]:
    with BackgroundServer(build_app(StoreBackend(store))) as running:
        yield running


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}); "
                    "apt-get install -y chromium chromium-driver")  # fmt: skip
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1280,900",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):  # fmt: skip
        options.add_argument(flag)
    # An explicit driver path means Selenium Manager never runs (it would download drivers).
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"screenshot {path} failed"
    artifacts = os.environ.get("DESCRIBEME_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(artifacts) / path.name)
    return path


def search(driver: Any, base: str, query: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(base + "/")
    box = driver.find_element(By.ID, "query")
    box.clear()
    box.send_keys(query)
    driver.find_element(By.ID, "search-button").click()


def wait(driver: Any, condition: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S).until(condition)


def test_page_loads(browser: Any, server: BackgroundServer, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/")
    assert browser.title.startswith("describeme")
    assert browser.find_element(By.ID, "query").is_displayed()
    assert not browser.find_element(By.ID, "error").is_displayed()
    assert screenshot(browser, tmp_path, "page-loaded").stat().st_size > 1000


def test_query_shows_cards_with_thumbnails(
    browser: Any, server: BackgroundServer, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    search(browser, server.url, "red shirt and blue jeans")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".card")) >= 2)
    cards = browser.find_elements(By.CSS_SELECTOR, ".card")
    assert cards[0].get_attribute("data-track-id") == "cam-a:1"
    assert "strict" in cards[0].get_attribute("class")
    assert "relaxed" in cards[1].get_attribute("class")  # track 2 fails "blue pants"
    for card in cards[:2]:
        image = card.find_element(By.CSS_SELECTOR, "img.thumb")
        wait(browser, lambda d, im=image: d.execute_script("return arguments[0].complete", im))
        assert browser.execute_script("return arguments[0].naturalWidth", image) == 32
    matched = [c.text for c in cards[0].find_elements(By.CSS_SELECTOR, ".part.matched")]
    assert matched == ["upper-clothes: red, long", "pants: blue, long"]
    failed = [c.text for c in cards[1].find_elements(By.CSS_SELECTOR, ".part.failed")]
    assert failed == ["pants: dark, long"]
    failed_list = cards[1].find_element(By.CSS_SELECTOR, ".failed-list").text
    assert failed_list == "not matched: pants color=blue (runner-up 25%)"
    assert "camera cam-a" in cards[0].find_element(By.CSS_SELECTOR, ".camera").text
    assert "2027" in cards[0].find_element(By.CSS_SELECTOR, ".time").text  # 1.8e9 s is 2027
    screenshot(browser, tmp_path, "search-results")


def test_bad_query_shows_the_error(browser: Any, server: BackgroundServer, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    search(browser, server.url, "hello world")
    error = wait(browser, lambda d: d.find_element(By.ID, "error").is_displayed()
                 and d.find_element(By.ID, "error"))  # fmt: skip
    assert "nothing to search for" in error.text and "hello" in error.text
    assert browser.find_elements(By.CSS_SELECTOR, ".card") == []
    screenshot(browser, tmp_path, "bad-query-error")


def test_card_click_shows_track_history(
    browser: Any, server: BackgroundServer, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    search(browser, server.url, "red shirt and blue jeans")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".card .history-link"))
    browser.find_elements(By.CSS_SELECTOR, ".card .history-link")[0].click()
    wait(browser, lambda d: d.find_element(By.ID, "track").is_displayed())
    body = browser.find_element(By.ID, "track-body")
    assert "Track 1 on camera cam-a" in body.text
    rows = [r.text for r in body.find_elements(By.CSS_SELECTOR, "table.events tr")][1:]
    assert len(rows) == 2 and "appeared" in rows[0] and "jacket off" in rows[1]
    assert not browser.find_element(By.ID, "results").is_displayed()
    image = body.find_element(By.CSS_SELECTOR, "img.track-thumb")
    wait(browser, lambda d: d.execute_script("return arguments[0].naturalWidth", image) == 32)
    screenshot(browser, tmp_path, "track-history")
    browser.find_element(By.ID, "track-close").click()
    wait(browser, lambda d: d.find_element(By.ID, "results").is_displayed())
    assert not browser.find_element(By.ID, "track").is_displayed()


def test_markup_in_data_is_shown_as_text(browser: Any, server: BackgroundServer) -> None:
    from selenium.webdriver.common.by import By

    search(browser, server.url, "green coat")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".card"))
    assert MARKUP_STREAM in browser.find_element(By.CSS_SELECTOR, ".card .camera").text
    assert browser.find_elements(By.ID, "injected") == []


def test_page_asks_for_and_uses_the_token(browser: Any, store: TrackStore, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    app = build_app(StoreBackend(store), ServeSettings(token=TOKEN))
    with BackgroundServer(app) as secured:
        search(browser, secured.url, "red shirt and blue jeans")
        error = wait(browser, lambda d: d.find_element(By.ID, "error").is_displayed()
                     and d.find_element(By.ID, "error"))  # fmt: skip
        assert "Authorization: Bearer" in error.text
        assert browser.find_element(By.ID, "token").is_displayed()  # the box opened
        screenshot(browser, tmp_path, "token-required")
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.ID, "search-button").click()
        wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".card")) >= 2)
        assert not browser.find_element(By.ID, "error").is_displayed()
        browser.find_elements(By.CSS_SELECTOR, ".card .history-link")[0].click()
        image = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "img.track-thumb"))[0]
        wait(browser, lambda d: d.execute_script("return arguments[0].naturalWidth", image) == 32)
        browser.execute_script("sessionStorage.clear()")
