"""The web inbox in a real browser: headless Chromium driven by Selenium.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them and sets
MAILWRIGHT_REQUIRE_BROWSER=1, so there a missing browser fails instead of skipping).
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailwright import EmailMessage, get_connection
from mailwright.demo import sample_messages
from mailwright.devserver import DevServer

DOCS = Path(__file__).resolve().parent.parent / "docs"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    if os.environ.get("MAILWRIGHT_REQUIRE_BROWSER") == "1":
        raise RuntimeError("chromium and chromedriver are required for the browser test")
    pytest.skip("chromium/chromedriver not installed", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def catcher() -> Iterator[DevServer]:
    server = DevServer("127.0.0.1", 0, 0, out=io.StringIO(), quiet=True).start_in_thread()
    yield server
    server.stop_thread()


def send_samples(catcher: DevServer, count: int = 3) -> None:
    connection = get_connection("smtp", host="127.0.0.1", port=catcher.smtp_port)
    assert connection.send_messages(sample_messages()[:count]) == count
    assert catcher.wait_for_messages(count)


def rows(browser: webdriver.Chrome) -> list[str]:
    """The subjects listed, read in one go (live updates replace the rows)."""
    subjects = browser.execute_script(
        "return [...document.querySelectorAll('tr.message td.subject')].map(e => e.innerText)"
    )
    assert isinstance(subjects, list)
    return [str(subject) for subject in subjects]


def click_link(browser: webdriver.Chrome, text: str) -> None:
    """Find the link and click it in one step in the page: live updates replace the
    list's rows at any moment, so an element found first and clicked later may be
    gone (StaleElementReferenceException)."""
    WebDriverWait(browser, 20).until(
        lambda _: browser.execute_script(
            "const link = [...document.querySelectorAll('a')]"
            "  .find((a) => a.textContent.trim() === arguments[0]);"
            "if (!link) return false; link.click(); return true;",
            text,
        )
    )


def on_message_page(browser: webdriver.Chrome, subject: str) -> None:
    """Wait until the message page of ``subject`` is loaded."""
    WebDriverWait(browser, 20).until(
        lambda _: (
            browser.execute_script(
                "const s = document.getElementById('subject'); return s ? s.textContent : null"
            )
            == subject
        )
    )


def settled(browser: webdriver.Chrome, subjects: list[str]) -> None:
    """Wait until the list shows ``subjects`` and no refresh is pending."""
    WebDriverWait(browser, 20).until(
        lambda _: (
            browser.execute_script("return document.getElementById('list').dataset.state") == "idle"
            and rows(browser) == subjects
        )
    )


def test_inbox_lists_opens_and_renders_html(browser: webdriver.Chrome, catcher: DevServer) -> None:
    send_samples(catcher)
    wait = WebDriverWait(browser, 20)

    browser.get(catcher.inbox_url)
    wait.until(lambda _: len(rows(browser)) == 3)
    subjects = rows(browser)
    assert subjects[0].startswith("Grüße aus Köln")  # newest first
    assert "Your monthly report" in subjects

    click_link(browser, "Your monthly report")
    on_message_page(browser, "Your monthly report")
    frame = wait.until(expected_conditions.presence_of_element_located((By.ID, "html-part")))
    assert frame.get_attribute("sandbox") == "allow-popups allow-popups-to-escape-sandbox"
    assert "report.csv" in browser.find_element(By.ID, "attachments").text

    # tabs: Text, Headers, Raw, back to HTML
    browser.find_element(By.ID, "tab-text").click()
    assert "plain-text alternative" in browser.find_element(By.ID, "text-part").text
    assert not frame.is_displayed()
    browser.find_element(By.ID, "tab-headers").click()
    assert "team@example.com" in browser.find_element(By.ID, "headers").text
    browser.find_element(By.ID, "tab-raw").click()
    assert "Subject: Your monthly report" in browser.find_element(By.ID, "raw-source").text
    browser.find_element(By.ID, "tab-html").click()
    assert frame.is_displayed()

    browser.switch_to.frame(frame)
    heading = wait.until(expected_conditions.presence_of_element_located((By.TAG_NAME, "h1")))
    assert heading.text == "Monthly report"
    image = browser.find_element(By.TAG_NAME, "img")
    # the inline image (cid:) was rewritten to the inbox and actually loaded
    wait.until(lambda _: browser.execute_script("return arguments[0].naturalWidth", image) == 48)
    browser.switch_to.default_content()
    # the page's own script ran under the CSP (no inline script needed)
    assert not [
        entry
        for entry in browser.get_log("browser")
        if "Content Security Policy" in entry.get("message", "")
    ]


def test_live_update_search_and_delete(browser: webdriver.Chrome, catcher: DevServer) -> None:
    send_samples(catcher, 2)
    wait = WebDriverWait(browser, 20)
    browser.get(catcher.inbox_url)
    wait.until(lambda _: len(rows(browser)) == 2)
    # live: a message sent while the page is open appears without a reload
    wait.until(
        lambda _: browser.find_element(By.TAG_NAME, "body").get_attribute("data-live") == "on"
    )
    marker = browser.execute_script("window.notReloaded = true; return window.notReloaded")
    assert marker is True
    send_samples_extra = EmailMessage(
        "Sent while you watched", "hello", "live@example.com", ["you@example.com"]
    )
    get_connection("smtp", host="127.0.0.1", port=catcher.smtp_port).send_messages(
        [send_samples_extra]
    )
    wait.until(lambda _: rows(browser)[:1] == ["Sent while you watched"])
    assert browser.execute_script("return window.notReloaded") is True
    assert browser.find_element(By.ID, "count").text == "3 messages"

    # search as you type
    search = browser.find_element(By.ID, "search")
    search.send_keys("monthly")
    settled(browser, ["Your monthly report"])
    assert browser.find_element(By.ID, "count").text == "1 of 3 match"
    assert "q=monthly" in browser.current_url
    search.clear()
    search.send_keys("zzz-nothing")
    settled(browser, [])
    assert browser.find_elements(By.CSS_SELECTOR, "p.empty")
    search.clear()
    search.send_keys(" ")  # an input event with an empty query shows everything again
    everything = ["Sent while you watched", "Your monthly report", "Welcome to mailwright"]
    settled(browser, everything)

    # per-message delete from the list (found and clicked in one step: live updates
    # replace the rows)
    doomed = browser.execute_script(
        "const b = document.querySelector('tr.message button.delete');"
        "b.click(); return b.dataset.id"
    )
    settled(browser, everything[1:])
    assert catcher.store.get(str(doomed)) is None

    # delete from the message page
    click_link(browser, "Your monthly report")
    on_message_page(browser, "Your monthly report")
    browser.find_element(By.ID, "delete-message").click()
    wait.until(lambda _: browser.current_url.rstrip("/") == (catcher.inbox_url or "").rstrip("/"))
    wait.until(lambda _: len(rows(browser)) == 1)
    assert len(catcher.store) == 1


def test_phone_width_shows_the_subject(
    browser: webdriver.Chrome, catcher: DevServer, tmp_path: Path
) -> None:
    send_samples(catcher)
    browser.set_window_size(375, 740)
    browser.get(catcher.inbox_url)
    wait = WebDriverWait(browser, 20)
    wait.until(lambda _: len(rows(browser)) == 3)
    width = browser.execute_script("return document.documentElement.clientWidth")
    assert width <= 375
    # nothing overflows sideways
    assert browser.execute_script("return document.documentElement.scrollWidth") <= width
    # every subject link's box, read in one step (live updates replace the rows)
    boxes = browser.execute_script(
        "return [...document.querySelectorAll('td.subject a')].map((a) => {"
        "  const r = a.getBoundingClientRect(); return [r.left, r.right, r.width, r.height];"
        "})"
    )
    assert len(boxes) == 3
    for box in boxes:
        assert box[0] >= 0 and box[1] <= width and box[2] > 0 and box[3] > 0, box
    shot = tmp_path / "inbox-375.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 0
    if os.environ.get("MAILWRIGHT_UPDATE_SCREENSHOT") == "1":
        DOCS.mkdir(exist_ok=True)
        browser.save_screenshot(str(DOCS / "inbox-phone.png"))
    # the message page fits too
    click_link(browser, "Your monthly report")
    on_message_page(browser, "Your monthly report")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= width


def test_screenshot_for_the_readme(browser: webdriver.Chrome, catcher: DevServer) -> None:
    """Saves docs/inbox.png when MAILWRIGHT_UPDATE_SCREENSHOT=1; always checks the page
    renders at desktop width."""
    send_samples(catcher)
    browser.set_window_size(1280, 720)
    browser.get(catcher.inbox_url)
    WebDriverWait(browser, 20).until(lambda _: len(rows(browser)) == 3)
    png = browser.get_screenshot_as_png()
    assert png.startswith(b"\x89PNG")
    if os.environ.get("MAILWRIGHT_UPDATE_SCREENSHOT") == "1":
        DOCS.mkdir(exist_ok=True)
        (DOCS / "inbox.png").write_bytes(png)


def test_delete_all_from_the_page(browser: webdriver.Chrome, catcher: DevServer) -> None:
    send_samples(catcher, 1)
    browser.get(catcher.inbox_url)
    wait = WebDriverWait(browser, 20)
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "tr.message")))
    browser.find_element(By.ID, "delete-all").click()
    wait.until(expected_conditions.alert_is_present()).accept()
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "p.empty")))
    assert len(catcher.store) == 0


def test_release_from_the_message_page(browser: webdriver.Chrome) -> None:
    relay = DevServer("127.0.0.1", 0, None, out=io.StringIO()).start_in_thread()
    catcher = DevServer(
        "127.0.0.1", 0, 0, out=io.StringIO(), release_to=[f"127.0.0.1:{relay.smtp_port}"]
    ).start_in_thread()
    try:
        send_samples(catcher, 1)
        browser.get(catcher.inbox_url)
        click_link(browser, "Welcome to mailwright")
        on_message_page(browser, "Welcome to mailwright")
        browser.find_element(By.CSS_SELECTOR, "#release summary").click()
        field = browser.find_element(By.CSS_SELECTOR, "#release-form input[name=to]")
        field.clear()
        field.send_keys("qa@example.com")
        browser.find_element(By.CSS_SELECTOR, "#release-form button").click()
        WebDriverWait(browser, 20).until(
            lambda _: (
                browser.find_element(By.ID, "release-result").text == "Released to qa@example.com"
            )
        )
        assert relay.wait_for_messages(1, 10)
        assert relay.store.messages()[0].rcpt_tos == ["qa@example.com"]
    finally:
        catcher.stop_thread()
        relay.stop_thread()
