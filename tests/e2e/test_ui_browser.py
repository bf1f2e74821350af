"""The provider in the real Airflow UI (the React UI of the e2e stack's api-server), in headless Chromium.

What the REST and CLI tests cannot show: that a person adding a connection sees this provider's own
form, and that a finished Nextmv task's page offers the run link.

* For every connection type the provider registers (``get_provider_info()["connection-types"]``,
  so a type added there is tested without touching this file): the *Add Connection* dialog offers
  the type by its hook name; its standard fields are those the provider leaves visible, relabelled
  and with the placeholders it declares; its extra fields are exactly its ``conn-fields``, each
  with its label, description and default.
* The ``submit_plan`` task of a finished ``example_nextmv_production_planning`` run: its page
  offers the operator extra link ``Nextmv run``, whose address is the run's console URL (the XCom
  ``run_url`` the link reads, and the URL built from the Nextmv run id), and clicking it opens that
  address in a new tab (answered by a stub: this test sends nothing off the machine).

The browser: Playwright (a PyPI package) drives a Chromium that is already installed, found as
``$UI_BROWSER`` or ``chromium-headless-shell`` / ``chromium`` on ``PATH`` (Debian's packages;
``make browser`` installs one), else Playwright's own download if there is one. Screenshots of each
test's last state (and a few intermediate ones) go to ``$UI_ARTIFACTS_DIR``, by default
``tests/e2e/artifacts/ui/`` (git-ignored); the folder is printed at the end of the module.

Auth: the stack runs with ``simple_auth_manager_all_admins``; its middleware gives every request an
admin token, so the UI loads without a login page.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import playwright.sync_api as playwright_api
import pytest
from playwright.sync_api import expect

from airflow_provider.get_provider_info import get_provider_info
from airflow_provider.protocol.nextmv import console_run_url

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("UI_ARTIFACTS_DIR") or REPO / "tests" / "e2e" / "artifacts" / "ui")

PROVIDER = get_provider_info()
CONNECTION_TYPES: list[dict[str, Any]] = PROVIDER["connection-types"]
#: The standard fields of Airflow's connection form (besides ``description``, which is always there).
STANDARD_FIELDS = ("host", "login", "password", "port", "schema")

DAG_ID = "example_nextmv_production_planning"
#: The run ``test_example_nextmv.py`` makes earlier in a full session (reused when it succeeded).
PIPELINE_RUN_ID = "e2e-production-planning"
#: The run made here when that one is not there (this module run alone): a small instance.
OWN_RUN_ID = "e2e-ui-browser"
APP_ID = "production-planning"
LINK_NAME = "Nextmv run"  # NextmvRunLink.name

#: Explicit waits: a page of the React UI takes 3-8 s on a loaded 2-core machine.
EXPECT_TIMEOUT_MS = 30_000
ACTION_TIMEOUT_MS = 60_000
expect.set_options(timeout=EXPECT_TIMEOUT_MS)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def chromium_executable() -> str | None:
    """An installed Chromium: ``$UI_BROWSER``, else Debian's on ``PATH``; None: Playwright's own."""
    explicit = os.environ.get("UI_BROWSER")
    if explicit:
        return explicit
    for name in ("chromium-headless-shell", "chromium"):
        path = shutil.which(name)
        if path:
            return path
    return None


class _ScreenshotsNote:
    """A plugin registered by :func:`browser`: one line in pytest's terminal summary."""

    NAME = "ui-browser-screenshots"

    def __init__(self, line: str):
        self.line = line

    def pytest_terminal_summary(self, terminalreporter) -> None:
        terminalreporter.write_line(self.line)


@pytest.fixture(scope="module")
def browser(request) -> Iterator[Any]:
    executable = chromium_executable()
    with playwright_api.sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=executable, headless=True)
        except playwright_api.Error as exc:
            pytest.fail(
                f"no usable Chromium ({executable or 'Playwright download'}): run `make browser` "
                f"(apt-get install chromium-headless-shell) or set UI_BROWSER\n{exc}"
            )
        # in the terminal summary (past output capture), so that CI's log says where the screenshots are
        note = f"UI screenshots (Chromium {browser.version}, {executable or 'Playwright'}): {ARTIFACTS}"
        if not request.config.pluginmanager.has_plugin(_ScreenshotsNote.NAME):
            request.config.pluginmanager.register(_ScreenshotsNote(note), _ScreenshotsNote.NAME)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, airflow_stack, request) -> Iterator[Any]:
    """A fresh browser context on the stack; anything not addressed to the stack gets a stub page."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stack_netloc = urlsplit(airflow_stack.base_url).netloc
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(ACTION_TIMEOUT_MS)

    def off_machine(route) -> None:
        url = route.request.url
        if urlsplit(url).netloc == stack_netloc or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            route.fulfill(status=200, content_type="text/html", body="<title>stub</title>stub")

    context.route("**/*", off_machine)
    page = context.new_page()
    try:
        yield page
    finally:
        try:
            page.screenshot(path=ARTIFACTS / f"{_slug(request.node.name)}.png", full_page=True)
        finally:
            context.close()


def _section(dialog, title: str):
    """The content of the dialog's accordion section ``title``, opened.

    (Located through the trigger's ``aria-controls``: the UI's section ids hold spaces, so the
    content's ``aria-labelledby`` gives it no accessible name.)
    """
    trigger = dialog.get_by_role("button", name=title, exact=True)
    expect(trigger).to_be_visible()
    if trigger.get_attribute("aria-expanded") != "true":
        trigger.click()
    expect(trigger).to_have_attribute("aria-expanded", "true")
    content = dialog.locator(f'[id="{trigger.get_attribute("aria-controls")}"]')
    expect(content).to_be_visible()
    return content


def _names(section, selector: str = "[name]") -> list[str]:
    return section.locator(selector).evaluate_all("els => els.map(e => e.getAttribute('name'))")


@pytest.mark.parametrize("conn_type", CONNECTION_TYPES, ids=[t["connection-type"] for t in CONNECTION_TYPES])
def test_connection_form(page, airflow_stack, conn_type):
    behaviour = conn_type.get("ui-field-behaviour", {})
    hidden = set(behaviour.get("hidden-fields", ()))
    relabeling: dict[str, str] = behaviour.get("relabeling", {})
    placeholders: dict[str, str] = behaviour.get("placeholders", {})
    conn_fields: dict[str, dict[str, Any]] = conn_type.get("conn-fields", {})
    slug = _slug(conn_type["connection-type"])

    page.goto(f"{airflow_stack.base_url}/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Add Connection")).to_be_visible()
    chooser = dialog.get_by_role("combobox", name="Connection Type")
    chooser.fill(conn_type["hook-name"])
    page.get_by_role("option", name=conn_type["hook-name"], exact=True).click()

    # standard fields: the ones not hidden, relabelled, with the declared placeholders
    standard = _section(dialog, "Standard Fields")
    visible = ["description", *(f for f in STANDARD_FIELDS if f not in hidden)]
    expect(standard.locator("[name]")).to_have_count(len(visible))  # waits for the form to render
    assert sorted(_names(standard)) == sorted(visible)
    for field, label in relabeling.items():
        if field in hidden:
            continue
        control = standard.get_by_label(label, exact=True)
        expect(control).to_have_attribute("name", field)
        expect(control).to_be_visible()
    for field, placeholder in placeholders.items():
        if field not in hidden:
            expect(standard.locator(f'[name="{field}"]')).to_have_attribute("placeholder", placeholder)
    page.screenshot(path=ARTIFACTS / f"connection-{slug}-standard.png", full_page=True)

    # extra fields: exactly the conn-fields, each with its label, description and default
    if not conn_fields:
        return
    extra = _section(dialog, "Extra Fields")
    expect(extra.locator('[name^="element_"]')).to_have_count(len(conn_fields))
    assert sorted(_names(extra, '[name^="element_"]')) == sorted(f"element_{key}" for key in conn_fields)
    for key, spec in conn_fields.items():
        control = extra.locator(f'[name="element_{key}"]')
        # (``has`` is matched inside each group: a locator of its own, not one chained from ``extra``)
        field = extra.get_by_role("group").filter(has=page.locator(f'[name="element_{key}"]'))
        expect(field).to_have_count(1)
        expect(field).to_be_visible()
        expect(field.locator("label").first).to_have_text(spec["label"])
        if spec.get("description"):
            expect(field).to_contain_text(spec["description"])
        schema = spec.get("schema", {})
        default = schema.get("default")
        if isinstance(default, bool):
            (expect(control).to_be_checked if default else expect(control).not_to_be_checked)()
        elif default is not None:
            expect(control).to_have_value(str(default))
        if schema.get("format") == "password":
            expect(control).to_have_attribute("type", "password")


@pytest.fixture(scope="module")
def nextmv_run(airflow_stack, tmp_path_factory) -> str:
    """The run id of a successful ``example_nextmv_production_planning`` run on the session's stack."""
    from optimization_emulator.testing.airflow_stack import AirflowApiError

    try:
        if airflow_stack.dag_run(DAG_ID, PIPELINE_RUN_ID)["state"] == "success":
            return PIPELINE_RUN_ID
    except AirflowApiError as exc:
        if exc.status != 404:
            raise
    work = tmp_path_factory.mktemp("ui-browser-work")
    conf = {"work_uri": str(work), "n_products": 200}
    run = airflow_stack.run_dag(DAG_ID, OWN_RUN_ID, conf=conf, timeout=240)
    assert run["state"] == "success", airflow_stack.failure_report(DAG_ID, OWN_RUN_ID)
    return OWN_RUN_ID


def test_nextmv_task_page_offers_run_link(page, airflow_stack, nextmv_run):
    run_id = nextmv_run
    nextmv_run_id = airflow_stack.xcom(DAG_ID, run_id, "submit_plan")
    run_url = airflow_stack.xcom(DAG_ID, run_id, "submit_plan", key="run_url")
    nextmv = next(t for t in CONNECTION_TYPES if t["connection-type"] == "nextmv")
    console = nextmv["conn-fields"]["console_url"]["schema"]["default"]
    # the e2e connection nextmv_default sets no console_url: the link is the default console's page
    assert run_url == console_run_url(console, APP_ID, nextmv_run_id)

    page.goto(f"{airflow_stack.base_url}/dags/{DAG_ID}/runs/{run_id}/tasks/submit_plan")
    expect(page.get_by_role("heading", name="submit_plan")).to_be_visible()
    page.get_by_role("link", name="Details", exact=True).click()
    expect(page.get_by_text("Extra Links", exact=True)).to_be_visible()
    link = page.get_by_role("link", name=LINK_NAME, exact=True)
    expect(link).to_be_visible()
    expect(link).to_have_attribute("href", run_url)
    expect(link).to_have_attribute("target", "_blank")
    page.screenshot(path=ARTIFACTS / "nextmv-task-details.png", full_page=True)

    t0 = time.monotonic()
    with page.context.expect_page() as opened:
        link.click()
    tab = opened.value
    tab.wait_for_load_state()
    assert tab.url == run_url, f"opened {tab.url} after {time.monotonic() - t0:.1f} s"
    tab.close()
