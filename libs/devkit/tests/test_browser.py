"""The headless Chromium driver: its flags, and a real page evaluated over DevTools."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from voicebus.devkit.browser import BrowserError, Chromium, chromium_flags, find_chromium


@pytest.mark.unit
def test_flags_give_a_headless_browser_a_fake_microphone(tmp_path: Path) -> None:
    wav = tmp_path / "line.wav"
    flags = chromium_flags(tmp_path / "profile", wav)
    assert "--headless=new" in flags
    assert "--use-fake-device-for-media-stream" in flags
    assert "--use-fake-ui-for-media-stream" in flags
    assert f"--use-file-for-fake-audio-capture={wav}%noloop" in flags
    assert f"--user-data-dir={tmp_path / 'profile'}" in flags
    assert ("--no-sandbox" in flags) == (os.geteuid() == 0)
    assert not any(f.startswith("--use-file-for") for f in chromium_flags(tmp_path, None))


@pytest.mark.integration
async def test_a_page_is_opened_and_evaluated(tmp_path: Path) -> None:
    assert find_chromium() is not None, "Chromium is missing: run scripts/install-browser.sh"
    page_file = tmp_path / "page.html"
    page_file.write_text("<title>t</title><script>window.answer = 6 * 7;</script>")
    async with Chromium(tmp_path / "profile") as browser:
        page = await browser.open(page_file.as_uri())
        assert await page.evaluate("window.answer") == 42
        assert await page.evaluate("Promise.resolve(document.title)") == "t"
        await page.evaluate("console.log('hello', 1)")
        assert await page.wait_for("true") is True
        with pytest.raises(BrowserError, match="boom"):
            await page.evaluate("(() => { throw new Error('boom') })()")
    assert any("hello 1" in line for line in page.console)
