"""The web page at / (speechsearch/server/static/) in a real headless Chromium driven by selenium,
against the real app served by uvicorn on a loopback port, over the session's index of the
example calls: the key prompt, a text search with highlighted words, playing a hit's span,
filters, search by an uploaded and by a recorded clip, the files view and removing a file.

Needs Chromium and its driver (`apt-get install chromium chromium-driver`) and selenium; without
them these tests fail with that hint instead of skipping. Each run saves a screenshot to
tests/.artifacts/web.png; with SPEECHSEARCH_UPDATE_DOCS_IMG=1 it also refreshes
docs/img/web-search.png.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")
import uvicorn  # noqa: E402

from speechsearch.server import create_app  # noqa: E402

from conftest import CALL_FILES, LIBRIVOX, ROOT, ffmpeg  # noqa: E402

KEY = "web-test-key-91c3e7"
ARTIFACTS = ROOT / "tests" / ".artifacts"
DOCS_IMG = ROOT / "docs" / "img" / "web-search.png"
INSTALL = ("install them with: apt-get install -y --no-install-recommends chromium chromium-driver "
           "&& pip install selenium==4.51.0   (make test does this)")
WAIT = 30  # seconds any one step may take on a slow, shared machine
# fields only this module's extra file carries, so the shared index is left as other tests expect
AGENT_FIELD, DATE_FIELD = "web_agent", "web_date"


def _find(env: str, *names: str) -> str | None:
    if os.environ.get(env):
        return os.environ[env]
    return next((p for p in (shutil.which(n) for n in names) if p), None)


@pytest.fixture(scope="module")
def site(indexed, tmp_path_factory):
    """The app over the session's index plus one small file with metadata (removed again at the
    end), served by uvicorn in a thread on a free loopback port."""
    extra_dir = tmp_path_factory.mktemp("web")
    extra = Path(shutil.copy(LIBRIVOX, extra_dir / "reading.flac"))
    report = indexed.add(extra, metadata={AGENT_FIELD: "W1", DATE_FIELD: "2026-01-15"})
    assert report.ok, report.summary()
    app = create_app(indexed, api_key=KEY)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield {"url": f"http://127.0.0.1:{sock.getsockname()[1]}", "extra": str(extra),
               "files": {f.path for f in indexed.files()}}
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        if any(f.path == str(extra) for f in indexed.files()):
            indexed.remove(extra)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """5.3 s of the refund call: "my bank statement shows I was charged twice for the same order"."""
    path = tmp_path_factory.mktemp("clip") / "charged-twice.wav"
    ffmpeg("-ss", "4.8", "-t", "5.3", "-i", str(CALL_FILES["refund"]), "-ac", "1", "-ar", "16000", str(path))
    return path


@pytest.fixture(scope="module")
def browser(clip):
    """Headless Chromium: autoplay allowed, sound muted, and a fake microphone that plays `clip`."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail(f"selenium is not installed; {INSTALL}", pytrace=False)
    chromium = _find("SPEECHSEARCH_CHROMIUM", "chromium", "chromium-browser", "google-chrome")
    driver_path = _find("SPEECHSEARCH_CHROMEDRIVER", "chromedriver")
    if not chromium or not driver_path:
        pytest.fail(f"no {'Chromium' if not chromium else 'chromedriver'} found; {INSTALL}", pytrace=False)
    os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium-manager download anything
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                "--disable-extensions", "--window-size=1100,1000", "--lang=en-US", "--mute-audio",
                "--autoplay-policy=no-user-gesture-required", "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={clip}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


# -- helpers ------------------------------------------------------------------------------------

def wait(driver, script: str, message: str, timeout: float = WAIT, *args):
    """Wait until the JS `script` returns something truthy; return it."""
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(
            lambda d: d.execute_script(script, *args))
    except Exception as e:  # TimeoutException: say what the page shows
        shown = driver.execute_script("const e = document.getElementById('error');"
                                      "return e && !e.hidden ? e.textContent : ''")
        raise AssertionError(f"{message} (after {timeout} s){'; the page shows: ' + shown if shown else ''}") from e


def by_id(driver, id_: str):
    return driver.find_element("id", id_)


def open_page(driver, site, fragment: str = "") -> None:
    """Load the page with the key already in this tab's sessionStorage (and no remembered field
    names in localStorage)."""
    driver.get(site["url"] + "/api/health")  # same origin, so the same storage
    driver.execute_script("sessionStorage.setItem('speechsearch.apiKey', arguments[0]); localStorage.clear()", KEY)
    driver.get(site["url"] + "/" + fragment)
    wait(driver, "return /files?, .* of audio/.test(document.getElementById('index-info').textContent)",
         "the page did not show the index summary")


def results(driver, site) -> list:
    """Wait for a search to finish; the hits shown, as dicts (an error shown fails the test)."""
    done = wait(driver, """
        const err = document.getElementById('error');
        if (!err.hidden) return 'error: ' + err.textContent;
        if (document.getElementById('results').getAttribute('aria-busy') === 'true') return null;
        const status = document.getElementById('status').textContent;
        return /result/i.test(status) && !/…$/.test(status) ? 'ok' : null;""", "no results appeared")
    assert done == "ok", done
    return driver.execute_script("""
        return [...document.querySelectorAll('#results li.hit')].map(li => ({
            path: li.dataset.path, start: Number(li.dataset.start), end: Number(li.dataset.end),
            text: li.querySelector('.snippet').textContent,
            marks: [...li.querySelectorAll('.snippet mark')].map(m => m.textContent)}));""")


def search(driver, site, query: str) -> list:
    driver.execute_script("document.getElementById('status').textContent = ''")
    box = by_id(driver, "q")
    box.clear()
    box.send_keys(query + "\n")
    return results(driver, site)


def screenshot(driver) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "web.png"))
    if os.environ.get("SPEECHSEARCH_UPDATE_DOCS_IMG") == "1":
        DOCS_IMG.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(DOCS_IMG))


PLAYER = "const p = document.getElementById('player');"


# -- tests --------------------------------------------------------------------------------------

def test_page_and_static_files_need_no_key_and_the_api_asks_for_it(browser, site):
    browser.get(site["url"] + "/")
    browser.execute_script("sessionStorage.clear()")
    browser.get(site["url"] + "/")
    assert browser.title == "speechsearch"
    wait(browser, "return !document.getElementById('key-form').hidden", "the key form did not appear on 401")
    assert "needs an API key" in by_id(browser, "key-message").text
    by_id(browser, "key").send_keys("wrong-key\n")
    wait(browser, "return !document.getElementById('key-form').hidden && "
                  "/refused/.test(document.getElementById('key-message').textContent)",
         "a wrong key was not reported")
    by_id(browser, "key").send_keys(KEY + "\n")
    wait(browser, "return /files?, .* of audio/.test(document.getElementById('index-info').textContent)",
         "the index summary did not load with the key")
    assert by_id(browser, "key-form").get_attribute("hidden") is not None
    assert browser.execute_script("return sessionStorage.getItem('speechsearch.apiKey')") == KEY
    assert by_id(browser, "index-info").text.startswith(f"{len(site['files'])} files")
    assert "models: tiny.en, all-MiniLM-L6-v2" in by_id(browser, "index-info").text  # which models, untuned


def test_text_search_highlights_the_words_and_plays_exactly_the_span(browser, site, calls):
    phrase = "coffee machine"  # said once, in the refund call
    expected = [c for c in calls.values() if any(phrase in t["text"] for t in c["turns"])]
    assert len(expected) == 1
    open_page(browser, site)
    hits = search(browser, site, phrase)
    assert hits
    top = hits[0]
    assert os.path.basename(top["path"]) == os.path.basename(expected[0]["file"]), hits
    assert [m.lower() for m in top["marks"]][:2] == ["coffee", "machine"], top
    turn = next(t for t in expected[0]["turns"] if phrase in t["text"])
    assert top["start"] < turn["end"] and top["end"] > turn["start"], (top, turn)

    browser.find_element("css selector", "#results li.hit .play").click()
    wait(browser, PLAYER + "return !p.paused && p.readyState >= 2 && p.currentTime > 0.3",
         "the player did not start playing the hit")
    first = browser.execute_script(PLAYER + "return [Number(p.dataset.offset), p.currentTime, p.duration]")
    wait(browser, PLAYER + "return p.currentTime > arguments[0] + 0.2", "playback did not advance", WAIT, first[1])
    offset, now, duration = browser.execute_script(
        PLAYER + "return [Number(p.dataset.offset), p.currentTime, p.duration]")
    assert offset == top["start"]
    assert top["start"] < offset + first[1] < offset + now <= top["end"], (top, first, now)
    assert duration == pytest.approx(top["end"] - top["start"], abs=0.05)  # the span, not the whole file
    assert by_id(browser, "now-playing").text.startswith("refund-call.mp3")
    screenshot(browser)

    # near the end of the span: it stops there, at hit.end in the file
    browser.execute_script(PLAYER + "p.currentTime = p.duration - 0.4")
    wait(browser, PLAYER + "return p.paused", "the player did not stop at the end of the span")
    offset, now = browser.execute_script(PLAYER + "return [Number(p.dataset.offset), p.currentTime]")
    assert offset + now == pytest.approx(top["end"], abs=0.1)
    assert browser.find_element("css selector", "#results li.hit .play").text == "▶"


def test_filters_become_a_where_filter(browser, site):
    open_page(browser, site)
    browser.find_element("css selector", ".field-names summary").click()
    for id_, value in (("agent-field", AGENT_FIELD), ("date-field", DATE_FIELD), ("agent", "W1")):
        by_id(browser, id_).clear()
        by_id(browser, id_).send_keys(value)
    set_dates = "document.getElementById('date-from').value = arguments[0];" \
                "document.getElementById('date-to').value = arguments[1];"
    browser.execute_script(set_dates, "2026-01-01", "2026-01-15")  # To covers its whole day
    assert browser.execute_script("return JSON.parse(window.speechsearch.whereFilter())") == {
        AGENT_FIELD: "W1", DATE_FIELD: {"$gte": "2026-01-01", "$lte": "2026-01-15T23:59:59.999"}}
    hits = search(browser, site, "cold hearted and selfish")
    assert hits and {h["path"] for h in hits} == {site["extra"]}
    assert "cold" in [m.lower() for m in hits[0]["marks"]]
    browser.execute_script(set_dates, "2026-02-01", "")
    assert search(browser, site, "cold hearted and selfish") == []
    assert by_id(browser, "status").text.startswith("No results")
    # an API error is shown, not swallowed
    by_id(browser, "agent-field").clear()
    by_id(browser, "agent-field").send_keys("agnt")
    browser.execute_script(set_dates, "", "")
    by_id(browser, "q").send_keys("\n")
    shown = wait(browser, "const e = document.getElementById('error'); return !e.hidden && e.textContent",
                 "the API's 400 was not shown")
    assert shown.startswith("InvalidInputError:") and "agnt" in shown


def test_highlighting_escapes_html_and_matches_whole_words(browser, site):
    open_page(browser, site)
    html = browser.execute_script("return window.speechsearch.highlight(arguments[0], arguments[1])",
                                  "<b>Refund</b> & refunds for the AMP <i>refund</i>", "the refund amp")
    assert html == ("&lt;b&gt;<mark>Refund</mark>&lt;/b&gt; &amp; refunds for the <mark>AMP</mark> "
                    "&lt;i&gt;<mark>refund</mark>&lt;/i&gt;")


def test_search_by_an_uploaded_clip(browser, site, clip):
    open_page(browser, site)
    browser.execute_script("document.getElementById('status').textContent = ''")
    by_id(browser, "clip").send_keys(str(clip))
    by_id(browser, "clip-button").click()
    hits = results(browser, site)
    assert hits and os.path.basename(hits[0]["path"]) == "refund-call.mp3" and hits[0]["start"] < 10 and hits[0]["end"] > 5


def test_search_by_a_recorded_clip(browser, site):
    """The fake microphone plays the clip; the page records it (MediaRecorder, webm) and sends it."""
    open_page(browser, site)
    browser.execute_script("document.getElementById('status').textContent = ''")
    by_id(browser, "record-button").click()
    wait(browser, "return /Recording 00:0[5-9]/.test(document.getElementById('record-status').textContent)",
         "recording did not start")
    by_id(browser, "record-button").click()
    hits = results(browser, site)
    assert browser.execute_script("return document.getElementById('status').textContent").endswith(
        "like recording.webm")
    assert hits and os.path.basename(hits[0]["path"]) == "refund-call.mp3", hits


def test_files_view_lists_the_index_and_removes_a_file(browser, site):
    open_page(browser, site, "#files")
    rows = "return [...document.querySelectorAll('#files-body tr')].map(tr => tr.dataset.path)"
    wait(browser, rows + ".length", "the files table stayed empty")
    assert set(browser.execute_script(rows)) == site["files"]
    cells = browser.execute_script("return [...document.querySelector('#files-body tr').cells].map(c => c.textContent)")
    assert cells[3] == "ready" and cells[1].count(":") == 1 and cells[5].split() == ["Similar", "Remove"]

    remove = f"#files-body tr[data-path='{site['extra']}'] button.remove"
    browser.find_element("css selector", remove).click()
    alert = browser.switch_to.alert
    assert site["extra"] in alert.text
    alert.dismiss()  # cancelled: nothing happens
    assert set(browser.execute_script(rows)) == site["files"]
    browser.find_element("css selector", remove).click()
    browser.switch_to.alert.accept()
    wait(browser, rows + ".length === arguments[0]", "the removed file stayed in the table", WAIT,
         len(site["files"]) - 1)
    assert set(browser.execute_script(rows)) == site["files"] - {site["extra"]}
    assert by_id(browser, "files-status").text.startswith("Removed 1 file.")
    assert site["extra"] not in {f["path"] for f in _api_files(site)}


def _api_files(site) -> list:
    import json
    import urllib.request

    request = urllib.request.Request(site["url"] + "/api/files", headers={"X-API-Key": KEY})
    with urllib.request.urlopen(request, timeout=WAIT) as response:
        return json.load(response)["files"]


def test_similar_calls_from_a_hit_and_a_file_and_the_topics_view(browser, site):
    open_page(browser, site)
    top = search(browser, site, "coffee machine")[0]
    browser.execute_script("document.getElementById('status').textContent = ''")
    browser.find_element("css selector", "#results li.hit button.similar").click()
    hits = results(browser, site)
    assert hits and top["path"] not in {h["path"] for h in hits}  # moments in other calls
    assert "like" in by_id(browser, "status").text

    open_page(browser, site, "#files")
    wait(browser, "return document.querySelectorAll('#files-body tr').length", "the files table stayed empty")
    path = sorted(site["files"])[0]
    browser.execute_script("document.getElementById('status').textContent = ''")
    browser.find_element("css selector", f"#files-body tr[data-path='{path}'] button.similar").click()
    hits = results(browser, site)
    assert hits and path not in {h["path"] for h in hits}
    assert browser.execute_script("return location.hash") == "#search"
    why = browser.execute_script("return [...document.querySelectorAll('#results li.hit .why')].map(p => p.textContent)")
    assert len(why) == len(hits) and all(w.startswith("like ") for w in why)  # the query's moment it matched

    open_page(browser, site, "#topics")
    wait(browser, "return /topics? over/.test(document.getElementById('topics-status').textContent)",
         "the topics did not load")
    topics = browser.execute_script("""
        return [...document.querySelectorAll('#topics-list li.topic')].map(li => ({
            label: li.querySelector('h3').textContent, examples: li.querySelectorAll('li.hit .play').length,
            bars: li.querySelectorAll('.chart .bar').length}));""")
    assert topics and all(t["label"] and t["examples"] for t in topics)
    assert all(t["bars"] >= 1 for t in topics)  # counted by the date field (here: unknown for every call)
