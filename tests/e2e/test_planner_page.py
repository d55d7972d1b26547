"""The planner's page in a real headless Chromium against a real `uvicorn`: sign in, filter to
a supplier, open a PO, edit a line with a reason, bulk approve two POs, see statuses and the
audit trail change; every control labelled and reachable by keyboard. Screenshots are kept
in test-artifacts/planner/ (gitignored)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from support import replen_exe

from replen.settings import Settings
from tests.e2e.page_server import CHROMIUM, chromium, serve
from tests.planner_chain import build_planner_chain

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "planner"
CONTROLS = "a[href], button, input, select, textarea, [tabindex]:not([tabindex='-1'])"
UNNAMED = re.compile(r"^\s*- (button|link|textbox|combobox|checkbox|spinbutton)\s*(\[.*\])?:?\s*$")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    root = tmp_path_factory.mktemp("page")
    settings = Settings(data_dir=root / "data", mlflow_dir=root / "mlflow")
    build_planner_chain(settings, stores=2, skus=12, seed=4)
    env = {"REPLEN_DATA_DIR": str(root / "data"), "REPLEN_MLFLOW_DIR": str(root / "mlflow")}
    # Real people, made the way an operator makes them: the first (an admin) needs no
    # sign-in; the admin then creates the planner who reviews in the browser.
    _replen(["users", "create", "ann", "--role", "admin"], ADMIN_PASSWORD, env, root)
    planner = ["users", "create", "pia", "--role", "planner", "--role", "approver"]
    signed_in_as_ann = env | {"REPLEN_USERNAME": "ann", "REPLEN_PASSWORD": ADMIN_PASSWORD}
    _replen(planner, PASSWORD, signed_in_as_ann, root)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with serve(env, root) as url, chromium() as browser:
        yield url, browser


ADMIN_PASSWORD = "ann-admin-password-1"
PASSWORD = "pia-planner-password-1"


def _replen(args: list[str], password: str, env: dict[str, str], cwd: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("REPLEN_")}
    done = subprocess.run(
        [replen_exe(), *args, "--password-stdin"],
        input=password + "\n",
        env=base | env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _unlabelled(page) -> list[str]:
    """Controls without an accessible name, from the accessibility tree."""
    tree = page.locator("body").aria_snapshot()
    return [line for line in tree.splitlines() if UNNAMED.match(line)]


def _unreachable(page) -> list[str]:
    """Visible, enabled controls that Tab never reaches (walks the whole tab order)."""
    wanted = page.eval_on_selector_all(
        CONTROLS,
        """els => els.filter(e => e.offsetParent !== null && !e.disabled)
                    .map((e, i) => { e.dataset.kb = 'k' + i; return 'k' + i; })""",
    )
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.locator("body").focus()
    seen: set[str] = set()
    for _ in range(len(wanted) + 40):
        page.keyboard.press("Tab")
        kb = page.evaluate("document.activeElement && document.activeElement.dataset.kb")
        if kb:
            seen.add(kb)
        if seen >= set(wanted):
            break
    return [
        page.eval_on_selector(f"[data-kb={k}]", "e => e.outerHTML.slice(0, 120)")
        for k in wanted
        if k not in seen
    ]


def test_a_planner_reviews_edits_and_approves_in_the_browser(site) -> None:
    url, browser = site
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/")
    # Nobody is signed in: the page asks, and a wrong password is said plainly.
    page.wait_for_selector("#signin-form")
    assert "Sign-in failed" not in page.locator("#signin-error").inner_text()
    page.fill("#signin-user", "pia")
    page.fill("#signin-password", "not-her-password")
    page.press("#signin-password", "Enter")
    page.wait_for_selector("#signin-error >> text=Sign-in failed")
    _shot(page, "00-sign-in-refused")
    page.fill("#signin-password", PASSWORD)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#who >> text=pia")
    # The access token is kept in memory, not in storage a script could read later.
    stored = page.evaluate("Object.values(sessionStorage)")
    assert stored and not any(v.count(".") == 2 for v in stored)  # a refresh token, no JWT
    page.wait_for_selector("#queue-table tbody tr[data-po]")
    _shot(page, "01-queue")
    assert not _unlabelled(page), _unlabelled(page)
    assert not _unreachable(page), _unreachable(page)

    # Filter to one supplier: only its POs remain.
    page.select_option("#f-supplier", "SUP02")
    page.wait_for_function(
        "[...document.querySelectorAll('#queue-table tbody tr[data-po] td:nth-child(3)')]"
        ".every(td => td.textContent === 'SUP02')"
    )
    suppliers = page.locator("#queue-table tbody tr[data-po] td:nth-child(3)").all_inner_texts()
    assert suppliers and set(suppliers) == {"SUP02"}
    _shot(page, "02-one-supplier")

    # Open a PO by keyboard: focus its link, press Enter.
    link = page.locator("#queue-table tbody tr[data-po] a").first
    po_id = link.inner_text().split()[1]
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#po-title >> text=PO {po_id}")
    # Every line explains its quantity: the steps' last total is the quantity.
    whys = page.locator("button.why")
    for i in range(whys.count()):
        whys.nth(i).click()
    page.wait_for_selector("svg.chart")
    for i in range(whys.count()):
        quantity = page.locator("table.lines tbody tr:not(.detail)").nth(i).locator("td").first
        last = page.locator(f"#line-{i} .steps li").last.locator(".total").inner_text()
        assert float(last.lstrip("= ").replace(",", "")) == float(
            quantity.inner_text().replace(",", "")
        )
        sentence = page.locator(f"#line-{i} .sentence").inner_text()
        assert sentence.startswith(f"order {quantity.inner_text()} = ")
    assert page.locator("svg.chart .band").count() >= 1
    assert page.locator("svg.chart .delivery").count() >= 1
    _shot(page, "03-po-explained")
    assert not _unlabelled(page), _unlabelled(page)
    assert not _unreachable(page), _unreachable(page)

    # Edit the first line with a reason, in place.
    first = page.locator("#line-0")
    sku = page.locator("button.why").first.get_attribute("aria-controls")
    assert sku == "line-0"
    before = int(first.locator("input[name=quantity]").input_value())
    first.locator("input[name=quantity]").fill(str(before + 6))
    first.locator("input[name=reason]").fill("school holidays start")
    first.locator("button[type=submit]").click()
    page.wait_for_selector(f"#status >> text={before} → {before + 6}")
    page.wait_for_selector("#audit >> text=school holidays start")
    assert "user:pia" in page.locator("#audit").inner_text()
    _shot(page, "04-edited")

    # Back to the queue: bulk approve two POs.
    page.click("text=← Back to the queue")
    page.select_option("#f-supplier", "")
    page.wait_for_function(
        "new Set([...document.querySelectorAll('#queue-table tbody tr[data-po] td:nth-child(3)')]"
        ".map(td => td.textContent)).size > 1"
    )
    picks = page.locator("#queue-table tbody tr[data-po] input.pick")
    chosen = [picks.nth(0).get_attribute("value"), picks.nth(1).get_attribute("value")]
    picks.nth(0).check()
    picks.nth(1).check()
    page.wait_for_selector("#selected-count >> text=2 selected")
    page.click("#bulk-approve")
    page.wait_for_selector("#status >> text=approve: 2 done")
    _shot(page, "05-bulk-approved")
    page.select_option("#f-status", "approved")
    page.wait_for_selector("#queue-table tbody tr[data-po] >> text=approved")
    approved = page.locator("#queue-table tbody tr[data-po]").evaluate_all(
        "rows => rows.map(r => r.dataset.po)"
    )
    assert sorted(approved) == sorted(chosen)
    statuses = page.locator("#queue-table tbody tr[data-po] td:last-child").all_inner_texts()
    assert statuses and all(s.lower().startswith("approved") for s in statuses)
    page.locator(f"#queue-table a[href='#/po/{chosen[0]}']").click()
    page.wait_for_selector("#audit >> text=approved")
    assert "user:pia approved" in page.locator("#audit").inner_text()
    _shot(page, "06-audit")

    # The what-if view says what to run before the first `replen simulate`.
    page.click("nav >> text=What-if")
    page.wait_for_selector("#whatif-none >> text=replen simulate")
    assert not _unreachable(page), _unreachable(page)
    assert not errors, errors
