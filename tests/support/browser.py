"""Debian's Chromium driven by Playwright, for the admin page's tests (``tests/e2e/ui/``).

Playwright never downloads a browser here: it launches ``/usr/bin/chromium`` (``./scripts/test``
installs Debian's package when it is missing, with ``PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1`` exported).
``screenshot`` writes under the test's folder and, with ``SPANGATE_UI_SCREENSHOTS=docs``, also the
README's ``docs/ui-<name>.png``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
DOCS = Path(__file__).resolve().parents[2] / "docs"
WIDTHS = {"wide": (1280, 900), "phone": (390, 844)}


@contextmanager
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        raise AssertionError(f"{CHROMIUM} is missing: run ./scripts/test (it installs Debian's chromium) "
                             "or apt-get install chromium")
    with sync_playwright() as playwright:
        # --no-sandbox: the tests run as root in a container, where Chromium's sandbox cannot start.
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Page, folder: Path, name: str) -> list[Path]:
    """The page at 1,280 px and at a phone's 390 px, full length; the viewport is put back."""
    written = []
    before = page.viewport_size
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        path = folder / f"ui-{name}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        written.append(path)
        if os.environ.get("SPANGATE_UI_SCREENSHOTS") == "docs" and label == "wide":
            DOCS.mkdir(exist_ok=True)
            page.screenshot(path=str(DOCS / f"ui-{name}.png"), full_page=True)
    if before:
        page.set_viewport_size(before)
    return written
