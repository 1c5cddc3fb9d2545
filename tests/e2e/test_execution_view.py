"""The Execution view and the Catalog page in a real browser (headless Chromium), inside the real
Airflow UI of the real stack: the view's tab on the task instance page shows a running task's log
growing without a reload, its timeline and, once it ends, its typed outputs; the Catalog page evicts
after a confirmation, and a user with read-only rights gets 403. A failed test saves a screenshot."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.airflow_stack import AirflowStack, start_run, wait_until
from harness.browser import start_chromium
from tests.e2e.test_local_stack import wait_started

pytestmark = pytest.mark.e2e

DAG_ID, TASK_ID = "e2e_execution_view", "counter"
COUNT = re.compile(r"^count (\d{4})$", re.M)


@pytest.fixture
def browser(airflow_stack: AirflowStack, request: pytest.FixtureRequest) -> Iterator[Any]:
    driver = start_chromium()
    try:
        yield driver
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            shots = airflow_stack.home / "screenshots"
            shots.mkdir(exist_ok=True)
            path = shots / f"{request.node.name}.png"
            driver.save_screenshot(str(path))
            print(f"[e2e] screenshot of the failure: {path}")
        driver.quit()


def sign_in_as(driver: Any, stack: AirflowStack, user: str) -> None:
    from harness.browser import sign_in

    client = stack.client_for(user)
    try:
        sign_in(driver, stack.base_url, client.token())
    finally:
        client.close()


def counts(driver: Any) -> list[int]:
    return [int(n) for n in COUNT.findall(driver.find_element("id", "stdout").text)]


def open_execution_tab(driver: Any, stack: AirflowStack, run_id: str) -> None:
    """The task instance page of the Airflow UI, on the provider's "Execution" tab (an iframe)."""
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    run = urllib.parse.quote(run_id, safe="")
    driver.get(f"{stack.base_url}/dags/{DAG_ID}/runs/{run}/tasks/{TASK_ID}/plugin/execution")
    WebDriverWait(driver, 60).until(
        ec.frame_to_be_available_and_switch_to_it(("css selector", 'iframe[title="Execution"]'))
    )
    WebDriverWait(driver, 30).until(ec.presence_of_element_located(("id", "timeline")))


@pytest.mark.dag_id(DAG_ID)
def test_the_execution_tab_follows_a_running_task_then_shows_its_outputs(
    airflow_stack: AirflowStack, browser: Any
) -> None:
    run_id = start_run(airflow_stack, DAG_ID, "view")
    airflow_stack.client.wait_for_task_state(DAG_ID, run_id, TASK_ID, "deferred", timeout=60)
    folder = airflow_stack.execution_dir(DAG_ID, run_id, TASK_ID)
    wait_started(airflow_stack, folder)
    sign_in_as(browser, airflow_stack, "viewer")  # reading needs no more than the viewer role
    open_execution_tab(browser, airflow_stack, run_id)

    first = wait_until(lambda: counts(browser) or None, 30, "a printed line in the view")
    assert browser.find_element("id", "phase").text == "RUNNING"
    # The page is not reloaded: its script polls the log while the task runs.
    browser.execute_script("window.__not_reloaded = 'yes'")

    def grown_by_five() -> list[int] | None:
        now = counts(browser)
        return now if len(now) >= len(first) + 5 else None

    grown = wait_until(grown_by_five, 30, "the log grows")
    assert grown[: len(first)] == first and browser.execute_script("return window.__not_reloaded") == "yes"
    timeline = browser.find_element("id", "timeline").text
    assert "RUNNING" in timeline
    assert (
        "step" in browser.find_element("id", "inputs").text
        and "5" in browser.find_element("id", "inputs").text
    )

    (folder / "work" / "release").touch()
    airflow_stack.client.wait_for_task_state(DAG_ID, run_id, TASK_ID, "success", timeout=60)
    # At the end the page reloads itself once: outputs and the whole timeline.
    outputs = wait_until(
        lambda: (
            _text_or_none(browser, "outputs")
            if "counted" in (_text_or_none(browser, "outputs") or "")
            else None
        ),
        30,
        "the outputs in the view",
    )
    assert "<i>done</i>" in outputs  # shown as text, not as markup
    assert browser.find_element("id", "phase").text == "SUCCEEDED"
    assert "SUCCEEDED" in browser.find_element("id", "timeline").text
    assert "CACHE_POPULATED" in browser.find_element("id", "cache").text


def _text_or_none(driver: Any, element_id: str) -> str | None:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    try:
        return str(driver.find_element("id", element_id).text)
    except (NoSuchElementException, StaleElementReferenceException):
        return None


@pytest.mark.dag_id(DAG_ID)
def test_the_catalog_page_evicts_after_a_confirmation_and_a_viewer_gets_403(
    airflow_stack: AirflowStack, browser: Any
) -> None:
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    entry = wait_until(lambda: _entry(airflow_stack), 90, "the counter's entry in the catalog (test above)")
    sign_in_as(browser, airflow_stack, "viewer")
    browser.get(f"{airflow_stack.base_url}/executors/catalog")
    assert DAG_ID in browser.find_element("id", "entries").text
    browser.find_element("css selector", "a.evict").click()
    assert "403" in browser.find_element("id", "refused").text  # a viewer may read, not evict

    sign_in_as(browser, airflow_stack, "admin")
    browser.get(f"{airflow_stack.base_url}/plugin/executors-catalog")  # the page in the UI's menu
    WebDriverWait(browser, 60).until(
        ec.frame_to_be_available_and_switch_to_it(("css selector", 'iframe[title="Executors catalog"]'))
    )
    WebDriverWait(browser, 30).until(ec.presence_of_element_located(("css selector", "a.evict"))).click()
    assert "Evict this catalog entry?" in browser.page_source
    assert _entry(airflow_stack) == entry, "nothing is evicted before the confirmation"
    browser.find_element("id", "confirm").click()
    assert (
        "Evicted" in WebDriverWait(browser, 30).until(ec.presence_of_element_located(("id", "evicted"))).text
    )
    assert _entry(airflow_stack) is None


def _entry(stack: AirflowStack) -> Path | None:
    found = [p for p in (stack.home / "catalog").rglob("*.pb") if f"{DAG_ID}.{TASK_ID}" in str(p)]
    return found[0] if found else None
