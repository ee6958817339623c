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
    # Each host's incidents are spans on its row: DC01 has the one critical story.
    spans = driver.execute_script(
        "return Array.from(document.querySelectorAll('#timeline .tl-row')).map(r => [r.dataset.host,"
        " Array.from(r.querySelectorAll('rect.inc-span')).map(x => x.getAttribute('class'))])"
    )
    spans = dict(spans)
    assert spans["DC01.corp.local"] == ["inc-span lvl-critical"]
    assert sorted(spans["WS01.corp.local"]) == ["inc-span lvl-high", "inc-span lvl-medium"]
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
    # Open every alert and every incident card so that all event fields are in the DOM.
    driver.execute_script("document.querySelectorAll('#alert-rows tr.alert-row').forEach(tr => tr.click())")
    driver.execute_script("document.querySelectorAll('#incident-cards .inc-head').forEach(h => h.click())")
    assert driver.execute_script("return document.querySelectorAll('#incident-cards .step-row').length") == 7
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


# ---------------------------------------------------------------- incident cards
def _cards(driver) -> list[dict]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#incident-cards .incident')).map(c => ({id: c.dataset.id,"
        " level: c.dataset.level, title: c.querySelector('.inc-title').textContent,"
        " open: !c.querySelector('.inc-body').classList.contains('hidden'),"
        " steps: c.querySelectorAll('.step-row').length}))"
    )


def test_incident_cards_first_sorted_and_expanding(driver, sample_report):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from svchunt.correlate.incidents import build_incidents

    _open(driver, sample_report)
    expected = build_incidents(synthetic.sample_result().alerts)
    # The incidents section comes before every other section of the page.
    first = driver.execute_script("return document.querySelector('main section').id")
    assert first == "incidents"
    cards = _cards(driver)
    assert [c["id"] for c in cards] == [i.incident_id for i in expected]
    rank = ["informational", "low", "medium", "high", "critical"]
    levels = [rank.index(c["level"]) for c in cards]
    assert levels == sorted(levels, reverse=True) and cards[0]["level"] == "critical"
    assert not any(c["open"] for c in cards) and all(c["steps"] == 0 for c in cards)  # steps built on open
    # The critical DC01 story: logon, install, execution chain plus the 4697 alert, two steps.
    head = driver.find_elements(By.CSS_SELECTOR, "#incident-cards .inc-head")[0]
    head.click()
    card = _cards(driver)[0]
    assert card["open"] and card["steps"] == 2
    steps = driver.execute_script(
        "return Array.from(document.querySelectorAll('#incident-cards .incident')[0].querySelectorAll('.step-row'))"
        ".map(li => [li.querySelector('.step-title').textContent, (li.querySelector('.telling') || {}).textContent])"
    )
    assert steps == [
        ["Service installed with cmd.exe /c", "ServiceFileName: cmd.exe /c powershell -enc SQBFAFgA"],
        ["Remote logon then service install then execution", "ImagePath: cmd.exe /c powershell -enc SQBFAFgA"],
    ]
    facts = driver.find_elements(By.CSS_SELECTOR, "#incident-cards .inc-facts")[0].text
    assert "10.0.0.66" in facts and "svc_upd" in facts and "DC01.corp.local" in facts
    head.click()
    assert not _cards(driver)[0]["open"]
    # Keyboard: Enter on a focused card opens it too.
    second = driver.find_elements(By.CSS_SELECTOR, "#incident-cards .inc-head")[1]
    second.send_keys(Keys.ENTER)
    assert _cards(driver)[1]["open"] and _cards(driver)[1]["steps"] == len(expected[1].alert_ids)
    # "show these alerts" filters the alert list to the incident's steps.
    head.click()
    driver.find_elements(By.CSS_SELECTOR, "#incident-cards .inc-filter")[0].click()
    assert _rows(driver) == 2
    assert driver.find_element(By.ID, "count").text == "2 of 7 alerts"
    incident_cells = driver.execute_script(
        "return Array.from(document.querySelectorAll('#alert-rows td.inc')).map(td => td.textContent)"
    )
    assert incident_cells == ["#1", "#1"]


def test_correlation_group_shown_as_fields(driver, sample_report):
    _open(driver, sample_report)
    driver.execute_script(
        "Array.from(document.querySelectorAll('#alert-rows tr.alert-row'))"
        ".find(tr => tr.textContent.includes('Remote logon then')).click()"
    )
    rows = driver.execute_script(
        "return Array.from(document.querySelectorAll('#alert-rows tr.detail table.kv')[0].rows)"
        ".map(r => [r.cells[0].textContent, r.cells[1].textContent])"
    )
    meta = dict(rows)
    assert meta["group: Computer"] == "DC01.corp.local"
    assert meta["correlation: timespan"] == "5m"
    assert not any(v.startswith("{") for v in meta.values())  # no raw JSON
    assert meta["incident"].startswith("#1 ")


def test_example_logs_report_cards(driver, tmp_path):
    from conftest import REPO

    from svchunt.engine.hunt import HuntOptions, run_hunt

    result = run_hunt(HuntOptions(paths=[str(REPO / "examples")], workers=1))
    path = tmp_path / "examples.html"
    html_report.write_html(str(path), result)
    driver.get_log("browser")  # drop anything logged by earlier pages
    _open(driver, path)
    driver.execute_script("document.querySelectorAll('#incident-cards .inc-head').forEach(h => h.click())")
    cards = _cards(driver)
    assert len(cards) == 5 and sum(c["steps"] for c in cards) == len(result.alerts)
    psexec = next(c for c in cards if "PsExec" in c["title"])
    assert psexec["steps"] == 20 and "10.20.4.17 (WS12)" in psexec["title"]
    pipes = driver.execute_script(
        "return Array.from(document.querySelectorAll('#incident-cards .telling')).map(t => t.textContent)"
        ".filter(t => t.startsWith('PipeName: '))"
    )
    assert "PipeName: \\PSEXESVC-WS12-4412-stdin" in pipes
    assert _severe_logs(driver) == []
