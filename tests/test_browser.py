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

from mailwright import get_connection
from mailwright.demo import sample_messages
from mailwright.devserver import DevServer

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
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def catcher() -> Iterator[DevServer]:
    server = DevServer("127.0.0.1", 0, 0, out=io.StringIO()).start_in_thread()
    yield server
    server.stop_thread()


def test_inbox_lists_opens_and_renders_html(browser: webdriver.Chrome, catcher: DevServer) -> None:
    connection = get_connection("smtp", host="127.0.0.1", port=catcher.smtp_port)
    assert connection.send_messages(sample_messages()) == 3
    wait = WebDriverWait(browser, 20)

    browser.get(catcher.inbox_url)
    rows = wait.until(
        expected_conditions.presence_of_all_elements_located((By.CSS_SELECTOR, "tr.message"))
    )
    subjects = [row.find_element(By.CSS_SELECTOR, "td.subject").text for row in rows]
    assert subjects[0].startswith("Grüße aus Köln")  # newest first
    assert "Your monthly report" in subjects

    browser.find_element(By.LINK_TEXT, "Your monthly report").click()
    frame = wait.until(expected_conditions.presence_of_element_located((By.ID, "html-part")))
    assert frame.get_attribute("sandbox") == ""
    assert "report.csv" in browser.find_element(By.ID, "attachments").text
    assert "plain-text alternative" in browser.find_element(By.ID, "text-part").text

    browser.switch_to.frame(frame)
    heading = wait.until(expected_conditions.presence_of_element_located((By.TAG_NAME, "h1")))
    assert heading.text == "Monthly report"
    image = browser.find_element(By.TAG_NAME, "img")
    # the inline image (cid:) was rewritten to the inbox and actually loaded
    wait.until(lambda _: browser.execute_script("return arguments[0].naturalWidth", image) == 48)
    browser.switch_to.default_content()


def test_delete_all_from_the_page(browser: webdriver.Chrome, catcher: DevServer) -> None:
    connection = get_connection("smtp", host="127.0.0.1", port=catcher.smtp_port)
    connection.send_messages(sample_messages()[:1])
    browser.get(catcher.inbox_url)
    wait = WebDriverWait(browser, 20)
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "tr.message")))
    browser.find_element(By.ID, "delete-all").click()
    browser.switch_to.alert.accept()
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "p.empty")))
    assert len(catcher.store) == 0
