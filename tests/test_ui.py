"""The web UI in a real headless browser (Debian's chromium + chromium-driver, driven by Selenium).

The session installs what it needs when it is missing (``apt-get install chromium
chromium-driver``, ``pip install selenium``) and FAILS (never skips) when it cannot. The UI is
served by a real ``cloudsdk ui --dir`` process (plain HTTP on loopback) over a store made here;
the HTTPS ``cloudsdk server`` serves the same app (checked without a browser below).

Set ``CLOUDSDK_UI_SCREENSHOTS=docs/img`` to write the documentation's screenshots.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tests.remote import RemoteStore

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
URL_LINE = re.compile(r"UI (?P<url>http://127\.0\.0\.1:\d+/ui/)\S*")
KEY_LINE = re.compile(r"API key\s+(?P<key>csk_\S+)")
WAIT_S = 15.0
XSS = '<img src=x onerror="document.title=\'pwned\'"> <b>games</b> of the season'


def _install_browser() -> None:
    """chromium + chromedriver from the Debian mirrors (as root), or fail.

    Parallel test workers install one at a time (a file lock), and apt-get waits for a dpkg
    lock held by anyone else instead of failing at once.
    """
    if os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER):
        return
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        pytest.fail("the UI tests need chromium and chromium-driver: run `apt-get install -y chromium chromium-driver` "
                    "as root (apt-get is missing or this is not root)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    wait = ["-o", "DPkg::Lock::Timeout=600"]
    with open(os.path.join(tempfile.gettempdir(), "cloudsdk-tests-apt.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER):
            return  # another worker installed them while this one waited
        for cmd in ([apt, *wait, "update"],
                    [apt, *wait, "install", "-y", "--no-install-recommends", "chromium", "chromium-driver"]):
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                pytest.fail(f"{' '.join(cmd)} failed: {done.stderr[-2000:]}")
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail("apt-get installed chromium but /usr/bin/chromium or /usr/bin/chromedriver is missing")


def _install_selenium() -> None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        done = subprocess.run([sys.executable, "-m", "pip", "install", "selenium>=4.20"],
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.fail(f"pip install selenium failed: {done.stderr[-2000:]}")


@dataclass
class UI:
    """A running ``cloudsdk ui`` process."""

    process: subprocess.Popen[str]
    url: str
    key: str
    data_dir: Path


def _make_store(data_dir: Path) -> None:
    from cloudsdk.store import FeatureStoreService

    service = FeatureStoreService(data_dir)
    try:
        service.create_project("default", exist_ok=True)
        games = pa.table({"game_id": list(range(1, 41)),
                          "team_id": [i % 8 for i in range(40)],
                          "attendance": [1000.0 + 37.5 * i + (i % 7) * 120 for i in range(40)],
                          "home_goals": [i % 5 for i in range(40)]})
        service.create_group("default", "games", None, games, primary_key=["game_id"],
                             description="match results and attendance")
        teams = pa.table({"team_id": list(range(8)), "budget": [10.0 * (i + 1) for i in range(8)],
                          "city": ["Oslo", "Rome", "Lima", "Kyiv", "Pune", "Nice", "Bern", "Riga"]})
        service.create_group("default", "teams", None, teams, primary_key=["team_id"],
                             description=XSS)
        service.add_tag("default", "featuregroup", "games", None, "domain", "football")
    finally:
        service.close()


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UI]:
    data_dir = tmp_path_factory.mktemp("uistore")
    _make_store(data_dir)
    exe = Path(sys.executable).with_name("cloudsdk")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "cloudsdk.cli"]
    log_path = data_dir.parent / "ui-server.out"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([*cmd, "ui", "--dir", str(data_dir), "--port", "0"], stdout=log,
                                stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    try:
        while True:
            out = log_path.read_text()
            url, key = URL_LINE.search(out), KEY_LINE.search(out)
            if url and key:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"cloudsdk ui did not start; it printed {out!r}")
            time.sleep(0.1)
        yield UI(proc, url["url"], key["key"], data_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _install_browser()
    _install_selenium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1200,900", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, css: str, timeout: float = WAIT_S) -> Any:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout).until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)))
    except TimeoutException:
        raise AssertionError(f"no visible {css!r} at {driver.current_url}; the page shows:\n{_page(driver)}") from None


def _wait_text(driver: Any, css: str, text: str, timeout: float = WAIT_S) -> None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(driver, timeout).until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))
    except TimeoutException:
        raise AssertionError(f"{text!r} never appeared in {css!r}; the page shows:\n{_page(driver)}") from None


def _page(driver: Any) -> str:
    return str(driver.execute_script("return document.body.innerText"))[:3000]


def _shot(driver: Any, name: str, css: str | None = None) -> None:
    target = os.environ.get("CLOUDSDK_UI_SCREENSHOTS")
    if target:
        if css:
            driver.execute_script("document.querySelector(arguments[0]).scrollIntoView()", css)
        Path(target).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(target) / f"{name}.png"))


def _login(driver: Any, ui: UI, key: str | None = None) -> None:
    driver.get(ui.url + "#/login")
    form = _wait(driver, "#login-form")
    form.find_element("name", "project").clear()
    form.find_element("name", "project").send_keys("default")
    form.find_element("name", "key").clear()
    form.find_element("name", "key").send_keys(key or ui.key)
    form.find_element("id", "login-submit").click()


def _logged_in(driver: Any, ui: UI) -> None:
    _login(driver, ui)
    _wait(driver, "#groups")


# --- the HTTPS server serves the same UI (no browser needed) ----------------------------------------


def test_server_app_serves_the_ui_with_a_strict_policy(tmp_path: Path) -> None:
    with warnings.catch_warnings():  # starlette warns that httpx (pinned) should become httpx2
        warnings.filterwarnings("ignore", message=".*httpx2")
        from fastapi.testclient import TestClient

    from cloudsdk.server.app import build
    from cloudsdk.server.rest import create_app

    server = build(tmp_path / "store")
    try:
        client = TestClient(create_app(server))
        root = client.get("/", follow_redirects=False)
        assert root.status_code == 307 and root.headers["location"] == "/ui/"
        page = client.get("/ui/")
        assert page.status_code == 200 and "app.js" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert client.get("/ui/app.js").headers["content-type"].startswith("text/javascript")
        assert client.get("/ui/__init__.py").status_code == 404  # only the UI's own files
        # the API behind it still refuses a request without a key
        assert client.get("/api/v1/projects/default/featuregroups").status_code == 401
    finally:
        server.close()


def test_ui_command_refuses_a_non_loopback_host(tmp_path: Path) -> None:
    import io

    from cloudsdk.errors import ConfigurationError
    from cloudsdk.ui_command import run_ui

    with pytest.raises(ConfigurationError, match="loopback"):
        run_ui(tmp_path, host="0.0.0.0", port=0, out=io.StringIO())


# --- in the browser ---------------------------------------------------------------------------------


def test_a_page_without_a_key_returns_to_login(browser: Any, ui_server: UI) -> None:
    browser.get(ui_server.url)
    browser.execute_script("sessionStorage.clear()")
    browser.get(ui_server.url + "#/fg/games/1")
    _wait(browser, "#login-form")
    _shot(browser, "ui-login")
    # a wrong key: the login form shows the server's message and stays
    _login(browser, ui_server, key="csk_nope.wrong")
    _wait(browser, "#login-status .error")
    assert browser.find_elements("id", "login-form")
    # a key that stops working mid-session (revoked, or tampered with) also returns to login
    _logged_in(browser, ui_server)
    browser.execute_script("sessionStorage.setItem('cloudsdk.key', 'csk_bad.key')")
    browser.get(ui_server.url + "#/connectors")
    _wait(browser, "#login-status .error")
    assert "login" in browser.current_url
    assert "csk_" not in browser.current_url  # the key never travels in the URL


def test_search_finds_a_feature(browser: Any, ui_server: UI) -> None:
    _logged_in(browser, ui_server)
    box = browser.find_element("id", "search-input")
    box.clear()
    box.send_keys("attendance\n")
    result = _wait(browser, '#search-results .result[data-kind="feature"][data-name="attendance"]')
    assert "games" in result.text
    _shot(browser, "ui-search")
    result.find_element("tag name", "a").click()
    _wait(browser, "#schema")
    assert "attendance" in browser.find_element("id", "schema").text


def test_group_page_shows_histograms_heatmap_and_escapes_text(browser: Any, ui_server: UI) -> None:
    _logged_in(browser, ui_server)
    browser.get(ui_server.url + "#/fg/games/1")
    hist = _wait(browser, 'svg.histogram[data-feature="attendance"]')
    bars = hist.find_elements("css selector", "rect.bar")
    assert len(bars) >= 5 and any(float(b.get_attribute("height")) > 0 for b in bars)
    cells = browser.find_elements("css selector", "#correlation svg.heatmap rect.cell")
    assert len(cells) >= 9  # at least a 3x3 matrix of the numeric features
    assert "football" in browser.find_element("id", "tags").text
    assert browser.find_element("id", "commits-table").text.count("WRITE") >= 1
    preview = _wait(browser, "#preview-table")
    headers = [th.text for th in preview.find_elements("css selector", "thead th")]
    assert "attendance" in headers
    assert 1 <= len(preview.find_elements("css selector", "tbody tr")) <= 10
    _shot(browser, "ui-featuregroup", "#statistics")
    _shot(browser, "ui-correlation", "#correlation")
    # a description is text, never HTML: the tags show literally, and no script ran
    browser.get(ui_server.url + "#/fg/teams/1")
    _wait_text(browser, "#fg-description", "<b>games</b>")
    assert not browser.find_element("id", "fg-description").find_elements("css selector", "img, b")
    assert browser.title != "pwned"


def test_a_validation_rule_is_added_and_its_result_seen(browser: Any, ui_server: UI) -> None:
    from selenium.webdriver.support.ui import Select

    _logged_in(browser, ui_server)
    browser.get(ui_server.url + "#/fg/games/1")
    form = _wait(browser, "#rule-form")
    _wait_text(browser, "#rules-box", "No validation rules")
    form.find_element("name", "name").send_keys("attendance_cap")
    Select(form.find_element("name", "rule_type")).select_by_value("max")
    Select(form.find_element("name", "features")).select_by_value("attendance")
    form.find_element("name", "max").send_keys("1500")
    Select(form.find_element("name", "level")).select_by_value("warning")
    form.find_element("name", "hint").send_keys("stadium capacity")
    form.find_element("css selector", "button[type=submit]").click()
    _wait_text(browser, "#rule-status", "attendance_cap added")
    _wait_text(browser, "#rules-table", "attendance_cap")
    # a bad rule: the server's message is shown, nothing breaks
    form.find_element("name", "name").send_keys("bad_bounds")
    Select(form.find_element("name", "rule_type")).select_by_value("min")
    form.find_element("name", "min").send_keys("5")
    form.find_element("name", "max").send_keys("1")
    form.find_element("css selector", "button[type=submit]").click()
    _wait(browser, "#rule-status .error")
    # the validation job: the result of the new rule is seen
    browser.find_element("id", "run-validation").click()
    _wait_text(browser, "#results-box", "attendance_cap")
    results = browser.find_element("id", "results-box").text
    assert "warning" in results and "1500" in results
    _shot(browser, "ui-validation", "#validation")


def test_create_a_training_dataset_by_picking_features(browser: Any, ui_server: UI) -> None:
    _logged_in(browser, ui_server)
    browser.get(ui_server.url + "#/create")
    _wait(browser, "#picker")
    for group, feature in (("games", "attendance"), ("games", "home_goals"), ("teams", "budget")):
        browser.find_element("css selector", f'#picker input[data-group="{group}"][value="{feature}"]').click()
    form = browser.find_element("id", "create-form")
    form.find_element("name", "name").send_keys("matches")
    form.find_element("id", "preview-query").click()  # games and teams share no primary key
    _wait_text(browser, "#create-status", "share no primary key")
    form.find_element("name", "join_key").send_keys("team_id")
    form.find_element("name", "splits").send_keys("train=0.75, test=0.25")
    form.find_element("id", "preview-query").click()
    _wait_text(browser, "#create-status", "JOIN")
    _shot(browser, "ui-create")
    form.find_element("css selector", "button[type=submit]").click()
    _wait(browser, "#provenance-table")
    page = browser.find_element("id", "main").text
    assert "matches" in page and "tfrecords" in page
    provenance = browser.find_element("id", "provenance-table").text
    assert "games" in provenance and "teams" in provenance
    splits = browser.find_element("id", "td-splits").text
    assert "train" in splits and "test" in splits
    _shot(browser, "ui-trainingdataset", "#td-overview")


def test_connectors_and_feature_stores(browser: Any, ui_server: UI) -> None:
    _logged_in(browser, ui_server)
    browser.get(ui_server.url + "#/connectors")
    assert "default_training_datasets" in _wait(browser, "#connectors").text
    browser.get(ui_server.url + "#/stores")
    assert "default_featurestore" in _wait(browser, "#stores").text
    # a page of something that does not exist shows the server's message; the page keeps working
    browser.get(ui_server.url + "#/fg/no_such_group/1")
    assert "no_such_group" in _wait(browser, "#main .error").text
    browser.find_element("link text", "Home").click()
    _wait(browser, "#groups")


def test_the_https_server_serves_the_ui(remote_store: RemoteStore) -> None:
    """The real ``cloudsdk server`` (HTTPS with the store's own CA). This loopback-only browser
    ignores certificate errors: Chrome has no flag to trust one extra CA file."""
    _install_browser()
    _install_selenium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from cloudsdk.store import FeatureStoreService
    from cloudsdk.store.security import SecurityService

    owner, _owner_key = remote_store.new_project()
    project, key = remote_store.new_project()
    service = FeatureStoreService(remote_store.data_dir)
    try:
        service.create_group(owner, "shared_scores", None, pa.table({"id": [1, 2, 3], "score": [0.5, 1.5, 4.0]}),
                             primary_key=["id"], description="scores another project shares")
        SecurityService(service.catalog).share(owner, project)
    finally:
        service.close()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1000,700", "--ignore-certificate-errors"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        base = f"https://127.0.0.1:{remote_store.port}/"
        driver.get(base)  # "/" redirects to the UI, which asks for a key
        form = _wait(driver, "#login-form")
        assert "/ui/" in driver.current_url
        form.find_element("name", "project").clear()
        form.find_element("name", "project").send_keys(project)
        form.find_element("name", "key").send_keys(key)
        form.find_element("id", "login-submit").click()
        _wait_text(driver, "#main", "No feature groups yet")
        driver.get(base + "ui/#/stores")
        stores = _wait(driver, "#stores")
        assert f"{project}_featurestore" in stores.text and f"{owner}_featurestore" in stores.text
        stores.find_element("css selector", "button").click()  # browse the shared store
        _wait(driver, "#groups").find_element("link text", "shared_scores").click()
        _wait(driver, 'svg.histogram[data-feature="score"]')
        assert not driver.find_elements("id", "rule-form")  # read-only: no forms that write
        assert "shared, read-only" in driver.find_element("id", "who").text
    finally:
        driver.quit()
