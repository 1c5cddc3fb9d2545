"""A real browser for the e2e suite: Debian's headless Chromium, driven by Selenium.

Playwright's own browser download cannot work here (no network beyond the package registries);
Debian's ``chromium`` and ``chromium-driver`` packages can. The driver is named explicitly, so
Selenium never tries to download one.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL = "apt-get install -y chromium chromium-driver"


class BrowserMissing(RuntimeError):
    """Chromium or its driver is not installed (the message says how to install them)."""


def missing() -> str | None:
    """What is missing to run the browser, or ``None``."""
    if not Path(CHROMEDRIVER).exists() or shutil.which("chromium") is None:
        return f"Chromium and chromium-driver are needed for the browser suite: {INSTALL}"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is needed for the browser suite: pip install -e '.[dev]'"
    return None


def start_chromium(*, width: int = 1400, height: int = 1000) -> Any:
    """A headless Chromium session (``selenium.webdriver.Chrome``); the caller quits it."""
    problem = missing()
    if problem:
        raise BrowserMissing(problem)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


def sign_in(driver: Any, base_url: str, token: str) -> None:
    """Be the user whose JWT is ``token``, as the UI is after a login: the ``_token`` cookie."""
    driver.delete_all_cookies()
    driver.get(f"{base_url}/api/v2/version")  # any page of the origin, to set a cookie on it
    driver.add_cookie({"name": "_token", "value": token, "path": "/"})
