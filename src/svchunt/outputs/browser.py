"""Headless Chromium for the report tests, the screenshot helper and the benchmark (one launch recipe).

Uses Debian's `chromium` and `chromedriver` through Selenium with an explicit driver path, so nothing is
downloaded. Selenium is a test extra, imported only here.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_NAMES = ("chromedriver",)

# Offline, root-friendly headless flags: no sandbox (root), no GPU, and no background traffic.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def _which(names: tuple[str, ...]) -> str | None:
    for name in names:
        found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
        if found:
            return found
    return None


def missing() -> str | None:
    """Why the browser cannot be started here, or None when it can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed (pip install -e '.[test]')"
    if not _which(CHROMIUM_NAMES):
        return "chromium not found (apt-get install -y chromium chromium-driver)"
    if not _which(DRIVER_NAMES):
        return "chromedriver not found (apt-get install -y chromium-driver)"
    return None


@contextmanager
def open_browser(width: int = 1400, height: int = 1000, init_script: str | None = None) -> Iterator[Any]:
    """A Selenium Chrome driver on headless Chromium; `init_script` runs in every page before its own scripts."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    reason = missing()
    if reason:
        raise RuntimeError(reason)
    profile = tempfile.mkdtemp(prefix="svchunt-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = _which(CHROMIUM_NAMES)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=_which(DRIVER_NAMES)), options=options)
    try:
        if init_script:
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": init_script})
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_ready(driver: Any, timeout: float = 20.0) -> None:
    """Wait until the report script has finished its first render."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.02).until(
        lambda d: d.execute_script("return document.documentElement.getAttribute('data-ready')") == "1"
    )


def screenshot(html_path: str, png_path: str, width: int = 1400, max_height: int = 6000) -> None:
    """Open a report and save a full-page PNG."""
    with open_browser(width=width) as driver:
        driver.get(Path(html_path).resolve().as_uri())
        wait_ready(driver)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, min(int(height) + 40, max_height))
        driver.save_screenshot(png_path)
