"""The HTML report in a real headless Chromium: it renders, filters, shows evidence, and runs no injected code."""

from __future__ import annotations

import sys

import pytest
from conftest import FIXTURES

from svchunt.outputs import browser, html_report

sys.path.insert(0, str(FIXTURES / "outputs"))
import synthetic  # noqa: E402

_why = browser.missing()
pytestmark = pytest.mark.skipif(_why is not None, reason=f"browser tests need Chromium: {_why}")

# Installed before any page script: records dialogs, script errors, resource errors and CSP violations.
HOOK = """
window.__hits = [];
['alert', 'confirm', 'prompt', 'print', 'open'].forEach(function (name) {
  window[name] = function (m) { window.__hits.push(name + ':' + m); };
});
document.addEventListener('securitypolicyviolation', function (e) {
  window.__hits.push('csp:' + e.violatedDirective + ':' + e.blockedURI);
}, true);
window.addEventListener('error', function (e) {
  window.__hits.push('error:' + (e.message || (e.target && e.target.tagName)));
}, true);
"""


@pytest.fixture(scope="module")
def driver():
    with browser.open_browser(init_script=HOOK) as d:
        yield d


def _open(driver, path):
    driver.get(path.resolve().as_uri())
    browser.wait_ready(driver)


def _rows(driver) -> int:
    return driver.execute_script("return document.querySelectorAll('#alert-rows tr.alert-row').length")


def _select(driver, element_id: str, value: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    Select(driver.find_element(By.ID, element_id)).select_by_value(value)


def _severe_logs(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.fixture
def sample_report(tmp_path):
    path = tmp_path / "report.html"
    audit = {
        "hive": "SYSTEM",
        "findings": [
            {"service": synthetic.XSS_SCRIPT, "image_path": synthetic.XSS_IMG, "reason": "driver not signed"},
            {
                "service": "WinDefend",
                "image_path": "C:\\ProgramData\\x.sys",
                "reason": "driver outside System32",
            },
        ],
    }
    html_report.write_html(str(path), synthetic.sample_result(), audit=audit, title="svchunt test report")
    return path


def test_renders_summary_timeline_rows_and_screenshot(driver, sample_report, tmp_path):
    _open(driver, sample_report)
    assert _rows(driver) == 7
    hosts = driver.execute_script(
        "return Array.from(document.querySelectorAll('#timeline-rows .tl-row')).map(r => r.dataset.host)"
    )
    # Only alerts with a timestamp are on the timeline; busiest host first.
    assert sorted(hosts) == sorted(
        ["DC01.corp.local", "WS01.corp.local", "WS02.corp.local", synthetic.HOSTILE_HOST]
    )
    assert hosts[0] == "DC01.corp.local"
    marks = driver.execute_script(
        "return Array.from(document.querySelectorAll('#timeline .tl-row')).map(r => [r.dataset.host,"
        " Array.from(r.querySelectorAll('svg path')).map(p => [p.getAttribute('class'), +p.dataset.count,"
        " (p.getAttribute('d').match(/M/g) || []).length])])"
    )
    marks = {host: sorted(map(tuple, paths)) for host, paths in marks}
    # One path per level per host; the two critical DC01 alerts 7 s apart share one time bin (one mark).
    assert marks["DC01.corp.local"] == [("lvl-critical", 2, 1)]
    assert marks["WS01.corp.local"] == [("lvl-high", 1, 1), ("lvl-medium", 1, 1)]
    assert marks["WS02.corp.local"] == [("lvl-low", 1, 1)]
    assert marks[synthetic.HOSTILE_HOST] == [("lvl-low", 1, 1)]
    assert "1 alert(s) without a timestamp" in driver.find_element("id", "timeline-note").text
    cards = driver.find_element("id", "cards").text
    assert "25311" in cards and "records skipped" in cards
    assert driver.find_element("id", "audit").is_displayed()
    assert "driver not signed" in driver.find_element("id", "audit").text
    assert "bad chunk checksum" in driver.find_element("id", "problems").text
    shot = tmp_path / "report.png"
    driver.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_filters_reduce_rows_and_timeline(driver, sample_report):
    from selenium.webdriver.common.by import By

    _open(driver, sample_report)
    _select(driver, "f-host", "WS01.corp.local")
    assert _rows(driver) == 2
    assert driver.execute_script("return document.querySelectorAll('#timeline-rows .tl-row').length") == 1
    assert driver.find_element(By.ID, "count").text == "2 of 7 alerts"
    _select(driver, "f-level", "high")  # level >= high, combined with the host filter
    assert _rows(driver) == 1
    driver.find_element(By.ID, "f-reset").click()
    assert _rows(driver) == 7
    _select(driver, "f-level", "critical")
    assert _rows(driver) == 2
    driver.find_element(By.ID, "f-reset").click()
    _select(driver, "f-tech", "T1112")
    titles = driver.execute_script(
        "return Array.from(document.querySelectorAll('#alert-rows td.rule')).map(td => td.textContent)"
    )
    assert titles == ["Service ImagePath modified in registry"]
    driver.find_element(By.ID, "f-reset").click()
    _select(driver, "f-rule", synthetic.LATERAL.rule_id)
    assert _rows(driver) == 1
    driver.find_element(By.ID, "f-reset").click()
    # Free-text search covers event fields (case-insensitive), debounced.
    driver.find_element(By.ID, "f-text").send_keys("PSEXESVC.exe")
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 5).until(lambda d: _rows(d) == 1)
    driver.find_element(By.ID, "f-reset").click()
    # Clicking a host in the timeline filters on it.
    driver.execute_script(
        "Array.from(document.querySelectorAll('.tl-row')).find(r => r.dataset.host === 'DC01.corp.local')"
        ".querySelector('.tl-host').click()"
    )
    assert _rows(driver) == 2
    assert driver.execute_script("return document.getElementById('f-host').value") == "DC01.corp.local"


def test_correlation_chain_in_time_order(driver, sample_report):
    _open(driver, sample_report)
    driver.execute_script(
        "Array.from(document.querySelectorAll('#alert-rows tr.alert-row'))"
        ".find(tr => tr.textContent.includes('Remote logon then')).click()"
    )
    detail = driver.find_element("css selector", "#alert-rows tr.detail")
    assert "Chain of 3 events, in time order" in detail.text
    steps = driver.execute_script(
        "return Array.from(document.querySelectorAll('#alert-rows tr.detail div.evidence')).map(d => d.firstChild.nextSibling.textContent)"
    )
    assert [s.split("EventID ")[1].split()[0] for s in steps] == ["4624", "7045", "4688"]
    # Each step shows that event's own fields.
    first = driver.execute_script(
        "return document.querySelector('#alert-rows tr.detail div.evidence').textContent"
    )
    assert "LogonType" in first and "10.0.0.66" in first


def test_hostile_strings_are_text_and_nothing_runs(driver, sample_report):
    _open(driver, sample_report)
    driver.get_log("browser")  # drop anything logged before this page
    # Open every alert so that all event fields are in the DOM.
    driver.execute_script("document.querySelectorAll('#alert-rows tr.alert-row').forEach(tr => tr.click())")
    text = driver.execute_script("return document.querySelector('main').textContent")
    for hostile in synthetic.HOSTILE:
        assert hostile in text, hostile
    # Option labels of the host filter carry the hostile computer name as text too.
    assert synthetic.HOSTILE_HOST in driver.execute_script(
        "return document.getElementById('f-host').textContent"
    )
    assert driver.execute_script("return window.__hits") == []
    assert driver.execute_script("return window.__pwned === undefined")
    assert (
        driver.execute_script(
            "return document.querySelectorAll('main img, main svg script, main a, main iframe').length"
        )
        == 0
    )
    assert driver.execute_script("return document.scripts.length") == 2
    assert _severe_logs(driver) == []
    # The hook itself works: a call to alert() from the page is recorded.
    driver.execute_script("window.alert('probe')")
    assert driver.execute_script("return window.__hits") == ["alert:probe"]


def test_hook_catches_a_real_injection(driver, tmp_path):
    """Control: the same payload inserted with innerHTML on a page without our defences is detected."""
    page = tmp_path / "unsafe.html"
    page.write_text(
        "<!DOCTYPE html><html><body><div id=x></div><script>"
        "document.getElementById('x').innerHTML = " + repr(synthetic.XSS_IMG) + ";"
        "document.documentElement.setAttribute('data-ready', '1');</script></body></html>"
    )
    _open(driver, page)
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 5).until(lambda d: d.execute_script("return window.__hits.length") > 0)
    assert "alert:xss-img" in driver.execute_script("return window.__hits")


def test_show_more_pages_through_large_lists(driver, tmp_path):
    from selenium.webdriver.common.by import By

    path = tmp_path / "many.html"
    big = synthetic.many_alerts(450, hosts=5)
    html_report.write_html(str(path), big)
    _open(driver, path)
    assert _rows(driver) == 200
    more = driver.find_element(By.ID, "more")
    assert "250 not shown" in more.text
    more.click()
    assert _rows(driver) == 400
    more.click()
    assert _rows(driver) == 450 and not more.is_displayed()
    host = "WS002.corp.local"
    expected = sum(1 for a in big.alerts if a.computer == host)
    _select(driver, "f-host", host)
    assert _rows(driver) == min(expected, 200) and expected < 450
    assert driver.find_element(By.ID, "count").text == f"{expected} of 450 alerts"


def test_audit_only_report(driver, tmp_path):
    path = tmp_path / "audit.html"
    findings = [
        {
            "service": synthetic.XSS_SVG,
            "image_path": synthetic.XSS_LINK,
            "reason": "image path in user folder",
        }
    ]
    html_report.write_html(str(path), None, audit=findings, title="audit")
    _open(driver, path)
    assert not driver.find_element("id", "alerts").is_displayed()
    audit = driver.find_element("id", "audit")
    assert audit.is_displayed()
    cells = driver.execute_script(
        "return Array.from(document.querySelectorAll('#audit td')).map(td => td.textContent)"
    )
    assert cells == [synthetic.XSS_SVG, synthetic.XSS_LINK, "image path in user folder"]
    assert driver.execute_script("return window.__hits") == []
