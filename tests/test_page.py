"""The page of `ser serve` in Debian's headless chromium (selenium + chromedriver): recording
from a fake microphone that plays a WAV made here, and uploading a file."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.test_serve import running

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip(
        "needs chromium and chromedriver (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CLASSES = {"neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"}


@pytest.fixture(scope="module")
def voice(tiny_corpus, tmp_path_factory) -> Path:
    """Twelve seconds of the synthetic corpus's clips of one actor, one after another."""
    clips = sorted((tiny_corpus / "speech" / "Actor_04").glob("*.wav"))[:6]
    samples = np.concatenate([sf.read(clip, dtype="float32")[0] for clip in clips])
    rate = sf.info(clips[0]).samplerate
    path = tmp_path_factory.mktemp("voice") / "voice.wav"
    sf.write(path, samples[: 12 * rate], rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def service(tiny_model):
    with running(tiny_model) as started:
        yield started


@pytest.fixture
def browser(voice, tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={voice}",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1000,1300",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(
        options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER)
    )
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver, name: str) -> Path:
    folder = Path(os.environ.get("TMPDIR", tempfile.gettempdir()))
    path = folder / f"ser-page-{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def wait_for_prediction(driver) -> str:
    WebDriverWait(driver, 120).until(
        lambda d: (
            d.find_element(By.ID, "label").text
            or "error" in d.find_element(By.ID, "status").get_attribute("class")
        )
    )
    assert "error" not in driver.find_element(By.ID, "status").get_attribute("class"), (
        driver.find_element(By.ID, "status").text
    )
    return driver.find_element(By.ID, "label").text


def open_page(driver, service) -> None:
    driver.get(f"http://127.0.0.1:{service.port}/")
    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "model-summary").text)


def test_record_from_the_microphone_and_see_the_emotion(service, browser):
    open_page(browser, service)
    record = browser.find_element(By.ID, "record")
    record.click()
    WebDriverWait(browser, 10).until(lambda d: record.get_attribute("aria-pressed") == "true")
    WebDriverWait(browser, 30).until(
        lambda d: float(d.find_element(By.ID, "timer").text.split()[0]) >= 5.0
    )
    record.click()  # stop: the page encodes the WAV and sends it
    label = wait_for_prediction(browser)
    assert label.lower() in CLASSES
    bars = browser.find_elements(By.CSS_SELECTOR, "#bars li")
    assert len(bars) == len(CLASSES)
    shown = [float(bar.find_element(By.CLASS_NAME, "value").text.split()[0]) for bar in bars]
    assert shown == sorted(shown, reverse=True) and 95 <= sum(shown) <= 105
    # Each bar is drawn as long as its probability (to a pixel or two).
    track = bars[0].find_element(By.CLASS_NAME, "track").size["width"]
    for bar, value in zip(bars, shown, strict=True):
        drawn = bar.find_element(By.CLASS_NAME, "fill").size["width"]
        assert drawn == pytest.approx(track * value / 100, abs=track * 0.006 + 2)
    assert "your recording" in browser.find_element(By.ID, "source").text
    screenshot(browser, "recorded")


def test_choose_a_long_file_and_see_its_timeline(service, browser, voice):
    open_page(browser, service)
    browser.find_element(By.ID, "file").send_keys(str(voice))
    label = wait_for_prediction(browser)
    assert label.lower() in CLASSES
    assert browser.find_element(By.ID, "source").text == voice.name
    windows = browser.find_elements(By.CSS_SELECTOR, "#timeline li")
    assert len(windows) >= 5  # 12 s in windows of 3 s, every 1.5 s
    first = windows[0].get_attribute("aria-label")
    assert first.startswith("0.0 to 3.0 s: ") and first.split(": ")[1].split(",")[0] in CLASSES
    screenshot(browser, "file")


def test_one_speaker_sessions_are_sent_and_dropped_with_the_page(service, browser):
    open_page(browser, service)
    box = browser.find_element(By.ID, "one-speaker")
    assert box.is_enabled()
    box.click()
    session = browser.execute_script("return page.sessionId")
    assert session
    record = browser.find_element(By.ID, "record")
    record.click()
    WebDriverWait(browser, 30).until(
        lambda d: float(d.find_element(By.ID, "timer").text.split()[0]) >= 2.0
    )
    record.click()
    wait_for_prediction(browser)
    assert service.request("GET", "/health")[1]["open_sessions"] == 1
    browser.get("about:blank")  # pagehide: the page asks the service to drop its session
    WebDriverWait(browser, 10).until(
        lambda d: service.request("GET", "/health")[1]["open_sessions"] == 0
    )
