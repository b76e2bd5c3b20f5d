"""The web UI in a real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium):
experiments, a grammar filter, a run with its metric chart, comparing two runs with the
differences toggle, and approving a request. Screenshots of each page are saved under
$UI_SCREENSHOTS (default: tests/compat/.screenshots/) for a reviewer; docs/screenshots/ holds a
committed copy."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
import requests

import mlflow
from mlflow import MlflowClient

from conftest import REPO_ROOT

pytestmark = pytest.mark.reprise_only

SHOTS = Path(os.environ.get("UI_SCREENSHOTS", REPO_ROOT / "tests" / "compat" / ".screenshots"))


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.fail("chromium and chromedriver are required (scripts/test.sh installs Debian's chromium and chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1360,1000", "--disable-gpu"]:
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def settled(driver, read, timeout: float = 20):
    """Polls `read(driver)` until it returns something truthy and returns that. Any driver error counts
    as "not yet": after a click that posts a form or follows a link, the old document is replaced by the
    new one, and reading an element in between fails with a stale reference or Chrome's "Node ... does
    not belong to the document" (both seen in CI). `read` must look elements up afresh each time and
    check what only the new page shows, so it cannot be satisfied by the page being left."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def poll(d):
        try:
            return read(d)
        except WebDriverException:
            return False

    return WebDriverWait(driver, timeout).until(poll)


def shot(driver, name: str):
    # A full-page screenshot: grow the window to the document's height first.
    height = driver.execute_script("return Math.min(document.body.scrollHeight, 4000)")
    driver.set_window_size(1360, max(800, height + 40))
    driver.save_screenshot(str(SHOTS / f"{name}.png"))
    driver.set_window_size(1360, 1000)


@pytest.fixture(scope="module")
def seeded(server):
    client = MlflowClient(server)
    name = f"ui-demo-{uuid.uuid4().hex[:6]}"
    exp = client.create_experiment(name)
    runs = []
    for i, (c, acc) in enumerate([(0.1, 0.72), (1.0, 0.86), (10.0, 0.91)]):
        passport = {} if i != 1 else {
            "reprise.passport.version": "1", "reprise.code.commit": "4f1c2d9e8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d",
            "reprise.code.branch": "main", "reprise.code.dirty": "false", "reprise.seed": "42",
            "reprise.data.digest": "9b1f" * 16, "reprise.data.inputs": '[{"path": "data/train.csv", "digest": "' + "9b1f" * 16 + '"}]',
            "reprise.env.digest": "77aa" * 16, "reprise.env.os": "Debian GNU/Linux 12 (bookworm)", "reprise.env.python": "CPython 3.11.7",
            "reprise.command": '["python", "train.py", "--C", "1.0"]', "reprise.purpose": "weekly retrain", "reprise.owner": "alice",
        }
        r = client.create_run(exp, run_name=f"logreg-C{c}", tags=passport)
        client.log_param(r.info.run_id, "C", str(c))
        client.log_param(r.info.run_id, "solver", "lbfgs")
        for step in range(10):
            client.log_metric(r.info.run_id, "loss", 1.0 / (step + 1 + i), step=step)
        client.log_metric(r.info.run_id, "accuracy", acc)
        client.set_tag(r.info.run_id, "mlflow.note.content", f"Run {i}: **C={c}**")
        client.set_terminated(r.info.run_id)
        runs.append(r.info.run_id)
    child = client.create_run(exp, run_name="fold-1", tags={"mlflow.parentRunId": runs[2]})
    client.log_metric(child.info.run_id, "accuracy", 0.9)
    client.set_terminated(child.info.run_id)
    model = f"ui-model-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(model, description="fraud detector")
    client.create_model_version(model, f"runs:/{runs[2]}/model", run_id=runs[2])
    s = requests.Session()
    s.headers["X-Reprise-Actor"] = "alice"
    r = s.put(f"{server}/api/reprise/v1/alias-policies",
              json={"model": model, "alias": "production", "required_approvals": 1, "approvers": ["carol"]}, timeout=30)
    assert r.status_code == 200, r.text
    r = s.post(f"{server}/api/reprise/v1/approval-requests",
               json={"model": model, "alias": "production", "version": "1", "rationale": "best accuracy so far"}, timeout=30)
    assert r.status_code == 202, r.text
    return {"exp": exp, "name": name, "runs": runs, "model": model}


def test_browse_filter_chart_compare_approve(server, browser, seeded):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20)
    b = browser

    # Experiments.
    b.get(f"{server}/ui/")
    link = wait.until(EC.element_to_be_clickable((By.LINK_TEXT, seeded["name"])))
    shot(b, "experiments")
    link.click()

    # Runs table: four runs (one nested), then a grammar filter.
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "table tbody tr")))
    names = [a.text for a in b.find_elements(By.CSS_SELECTOR, "tbody td:nth-child(2) a")]
    assert sorted(names) == sorted(["logreg-C0.1", "logreg-C1.0", "logreg-C10.0", "fold-1"])
    assert b.find_elements(By.CSS_SELECTOR, "tbody .tree"), "the child run is shown under its parent"
    box = b.find_element(By.NAME, "filter")
    box.clear()
    box.send_keys("metrics.accuracy > 0.85 and params.solver = 'lbfgs'")
    box.submit()
    wait.until(EC.url_contains("filter="))
    filtered = ["logreg-C1.0", "logreg-C10.0"]
    names = settled(b, lambda d: (n := sorted(a.text for a in d.find_elements(
        By.CSS_SELECTOR, "tbody td:nth-child(2) a"))) == filtered and n)
    assert names == filtered
    shot(b, "runs")
    # A mistake in the filter is explained inline.
    box = b.find_element(By.NAME, "filter")
    box.clear()
    box.send_keys("metrics.accuracy >> 1")
    box.submit()
    assert wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "p.error[role=alert]"))).text

    # Compare two runs, then only the differences.
    b.get(f"{server}/ui/experiments/{seeded['exp']}")
    boxes = {c.get_attribute("value"): c for c in b.find_elements(By.NAME, "runs")}
    boxes[seeded["runs"][0]].click()
    boxes[seeded["runs"][2]].click()
    b.find_element(By.XPATH, "//button[text()='Compare selected']").click()
    wait.until(EC.presence_of_element_located((By.ID, "diff-toggle")))
    loss = b.find_element(By.CSS_SELECTOR, "figure[data-chart='loss']")
    assert loss.get_attribute("data-points") == "20" and len(loss.find_elements(By.CSS_SELECTOR, "circle")) == 20
    all_rows = len(b.find_elements(By.CSS_SELECTOR, "tbody tr"))
    shot(b, "compare")
    b.find_element(By.ID, "diff-toggle").click()
    wait.until(EC.url_contains("diff=1"))

    def diff_rows(d):
        rows = d.find_elements(By.CSS_SELECTOR, "tbody tr")
        if not 0 < len(rows) < all_rows:
            return False
        return [(r.get_attribute("class"), r.find_element(By.TAG_NAME, "td").text) for r in rows]

    rows = settled(b, diff_rows)
    assert all("diff" in cls for cls, _ in rows)
    fields = [field for _, field in rows]
    assert "C" in fields and "solver" not in fields and "accuracy" in fields

    # A run: the loss chart has one point per logged step, with exact values on hover.
    b.get(f"{server}/ui/runs/{seeded['runs'][1]}")
    chart = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "figure[data-chart='loss']")))
    points = chart.find_elements(By.CSS_SELECTOR, "circle")
    assert chart.get_attribute("data-points") == "10" and len(points) == 10
    assert points[0].find_element(By.TAG_NAME, "title").get_attribute("textContent").endswith(": 0.5")
    # accuracy was logged once: a value in the table, not a one-point chart.
    assert not b.find_elements(By.CSS_SELECTOR, "figure[data-chart='accuracy']")
    assert "0.86" in b.find_element(By.XPATH, "//h2[text()='Metrics']/following-sibling::table[1]").text
    assert b.find_element(By.XPATH, "//h2[text()='Notes']/following-sibling::div[1]//strong").text == "C=1.0"
    passport = b.find_element(By.XPATH, "//h2[text()='Passport']/following-sibling::div[1]").text
    assert "commit 4f1c2d9e8b7a" in passport and "data/train.csv" in passport and "root 42" in passport
    shot(b, "run")

    # Approve the request from the model page as carol.
    b.get(f"{server}/ui/models/{seeded['model']}")
    form = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "form.approve")))
    shot(b, "model-request")
    form.find_element(By.NAME, "rationale").send_keys("reviewed the evaluation")
    form.find_element(By.NAME, "actor").send_keys("carol")
    form.find_element(By.XPATH, ".//button[text()='Approve']").click()
    # The page reloads; only the new one has the alias and no request left to approve.
    main = settled(b, lambda d: not d.find_elements(By.CSS_SELECTOR, "form.approve")
                   and d.find_elements(By.XPATH, "//h2[text()='Aliases']")
                   and d.find_element(By.TAG_NAME, "main").text)
    assert "@production" in main
    alias = MlflowClient(server).get_model_version_by_alias(seeded["model"], "production")
    assert alias.version == "1"
    shot(b, "model")
    b.get(f"{server}/ui/lineage?entity=alias:{seeded['model']}@production")
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "svg[data-chart='lineage']")))
    shot(b, "lineage")


def test_artifact_browser_lists_previews_and_downloads(server, browser, seeded, tmp_path):
    """The run's artifact browser over whichever store holds its artifacts (a folder on the SQLite
    pass, S3 on the PostgreSQL + S3 pass): folders, a text preview (escaped), the download link."""
    from selenium.webdriver.common.by import By

    rid = seeded["runs"][0]
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "readme.txt").write_text("trained on <fold 3> & checked")
    (docs / "table.csv").write_text("k,v\nC,1.0\n")
    MlflowClient(server).log_artifacts(rid, str(docs), "docs")

    b = browser
    b.get(f"{server}/ui/runs/{rid}/artifacts")
    settled(b, lambda d: d.find_element(By.LINK_TEXT, "docs/")).click()
    names = settled(b, lambda d: (n := sorted(a.text for a in d.find_elements(By.CSS_SELECTOR, "main table a"))) == ["readme.txt", "table.csv"] and n)
    assert names == ["readme.txt", "table.csv"]
    b.find_element(By.LINK_TEXT, "readme.txt").click()
    text = settled(b, lambda d: d.find_element(By.TAG_NAME, "pre").text)
    assert text == "trained on <fold 3> & checked"  # shown as text, not markup
    shot(b, "artifacts")
    href = b.find_element(By.LINK_TEXT, "Download").get_attribute("href")
    assert requests.get(href, timeout=30).content == b"trained on <fold 3> & checked"
    b.get(f"{server}/ui/runs/{rid}/artifacts?path=docs/table.csv")
    cells = settled(b, lambda d: [td.text for td in d.find_elements(By.CSS_SELECTOR, "main table td")])
    assert cells == ["C", "1.0"]
    # mlflow.log_table's JSON is shown as a table.
    import pandas as pd

    # (The client's own call on the seeded run: whatever experiment an earlier test left active.)
    MlflowClient(server).log_table(
        seeded["runs"][1], pd.DataFrame({"question": ["2+2?", "<b>bold</b>?"], "score": [1.0, 0.5]}), artifact_file="eval/results.json")
    b.get(f"{server}/ui/runs/{seeded['runs'][1]}/artifacts?path=eval/results.json")
    header = settled(b, lambda d: [th.text for th in d.find_elements(By.CSS_SELECTOR, "main table th")])
    assert header == ["question", "score"], header
    assert [td.text for td in b.find_elements(By.CSS_SELECTOR, "main table td")] == ["2+2?", "1.0", "<b>bold</b>?", "0.5"]
    assert "2 columns, 2 rows" in b.find_element(By.TAG_NAME, "main").text


def test_traces_and_deployments_pages(server, browser, api):
    from selenium.webdriver.common.by import By

    os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"
    try:
        exp = mlflow.set_experiment(f"ui-traces-{uuid.uuid4().hex[:6]}").experiment_id

        @mlflow.trace(span_type="CHAIN")
        def answer(question):
            with mlflow.start_span(name="retrieve", span_type="RETRIEVER") as s:
                s.set_inputs({"query": question})
                s.set_outputs({"docs": ["<b>doc one</b>", "doc two"]})
            return f"answer to {question}"

        answer("what is <script>alert(1)</script>?")
        good = mlflow.get_last_active_trace_id()

        @mlflow.trace
        def broken():
            raise ValueError("boom")

        with pytest.raises(ValueError):
            broken()
        bad = mlflow.get_last_active_trace_id()
        mlflow.log_feedback(trace_id=good, name="helpful", value=True, rationale="cites its sources")
    finally:
        os.environ.pop("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", None)

    browser.get(f"{server}/ui/experiments/{exp}/traces")
    rows = settled(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "table tbody tr"))
    assert len(rows) == 2
    assert "helpful: true" in browser.page_source
    browser.find_element(By.NAME, "filter").send_keys("trace.status = 'ERROR'")
    browser.find_element(By.CSS_SELECTOR, "form[role=search] button").click()
    settled(browser, lambda d: "filter=" in d.current_url and len(d.find_elements(By.CSS_SELECTOR, "table tbody tr")) == 1)
    assert bad in browser.find_element(By.CSS_SELECTOR, "table tbody tr a").get_attribute("href")
    shot(browser, "traces")

    browser.get(f"{server}/ui/traces/{good}")
    settled(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "section.card"))
    names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "table tbody tr td:first-child a")]
    assert names[:2] == ["answer", "retrieve"]
    text = browser.find_element(By.TAG_NAME, "main").text
    assert "<b>doc one</b>" in text and "<script>alert(1)</script>" in text, "inputs and outputs are shown as text"
    assert not browser.find_elements(By.CSS_SELECTOR, "main b, main script")
    assert "cites its sources" in text
    shot(browser, "trace")

    client = MlflowClient(server)
    model = f"ui-deploy-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(model)
    run = client.create_run(exp).info.run_id
    assert api.post("/api/2.0/mlflow/model-versions/create", json={"name": model, "source": "s3://m/1", "run_id": run}).status_code == 200
    d = api.post("/api/reprise/v1/deployments", json={"environment": "ui-prod", "model": f"{model}/1", "note": "first"}).json()["deployment"]
    i = api.post("/api/reprise/v1/incidents", json={"deployment_id": d["id"], "note": "latency <spike>"}).json()["incident"]
    browser.get(f"{server}/ui/deployments?environment=ui-prod")
    settled(browser, lambda d_: d_.find_elements(By.CSS_SELECTOR, "table tbody tr"))
    browser.find_element(By.LINK_TEXT, d["id"]).click()
    settled(browser, lambda d_: d_.find_elements(By.LINK_TEXT, i["id"]))
    browser.find_element(By.LINK_TEXT, i["id"]).click()
    settled(browser, lambda d_: "latency <spike>" in d_.find_element(By.TAG_NAME, "main").text)
    browser.find_element(By.PARTIAL_LINK_TEXT, "Trace it back").click()
    lineage = settled(browser, lambda d_: "lineage" in d_.current_url and d_.find_element(By.TAG_NAME, "main").text)
    assert f"run:{run}" in lineage and f"deployment:{d['id']}" in lineage
    # The diagram draws the deployment and the incident too, each a link to its page.
    svg = browser.find_element(By.CSS_SELECTOR, "main svg").get_attribute("outerHTML")
    assert f"/ui/deployments/{d['id']}\"" in svg and f"/ui/incidents/{i['id']}\"" in svg, svg[:400]
    shot(browser, "incident-lineage")


def test_prompt_pages_versions_diff_and_evaluations(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    name = f"ui-prompt-{uuid.uuid4().hex[:6]}"
    mlflow.genai.register_prompt(name=name, template="You are a support bot.\nAnswer: {{question}}",
                                 commit_message="first cut")
    mlflow.genai.register_prompt(name=name, template="You are a polite support bot.\nAnswer: {{question}}\nCite <sources>.",
                                 commit_message="politer", model_config={"temperature": 0.2})
    mlflow.genai.set_prompt_alias(name, alias="production", version=1)
    mlflow.set_experiment(f"ui-prompt-eval-{uuid.uuid4().hex[:6]}")
    with mlflow.start_run(run_name="eval-v2") as run:
        mlflow.genai.load_prompt(f"prompts:/{name}/2")
        mlflow.log_metric("accuracy", 0.91)

    browser.get(f"{server}/ui/prompts")
    settled(browser, lambda d: d.find_elements(By.LINK_TEXT, name))
    browser.find_element(By.LINK_TEXT, name).click()
    settled(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "section.card#v2"))
    v2 = browser.find_element(By.CSS_SELECTOR, "section.card#v2").text
    assert "Cite <sources>." in v2 and "politer" in v2 and "temperature" in v2, v2
    assert "eval-v2" in v2 and "accuracy=0.91" in v2, v2
    assert "No run has evaluated this version yet." in browser.find_element(By.CSS_SELECTOR, "section.card#v1").text
    assert "@production" in browser.find_element(By.CSS_SELECTOR, "section.card#v1").text
    assert not browser.find_elements(By.CSS_SELECTOR, "main sources"), "the template is shown as text"
    shot(browser, "prompt")

    Select(browser.find_element(By.NAME, "from")).select_by_visible_text("v1")
    Select(browser.find_element(By.NAME, "to")).select_by_visible_text("v2")
    browser.find_element(By.CSS_SELECTOR, "form[action$='/diff'] button").click()
    settled(browser, lambda d: "/diff" in d.current_url and d.find_elements(By.CSS_SELECTOR, "table.diff"))
    lines = lambda kind: [r.find_element(By.CSS_SELECTOR, "td.mark").text + " " + r.find_element(By.TAG_NAME, "pre").text
                          for r in browser.find_elements(By.CSS_SELECTOR, f"table.diff tr.{kind}")]
    added, removed, same = lines("add"), lines("del"), lines("same")
    assert removed == ["- You are a support bot."], removed
    assert added == ["+ You are a polite support bot.", "+ Cite <sources>."], added
    assert [line.strip() for line in same] == ["Answer: {{question}}"], same
    assert "2 line(s) added, 1 removed." in browser.find_element(By.TAG_NAME, "main").text
    shot(browser, "prompt-diff")

    # A registered model that is not a prompt has no prompt page; a missing version is a 404 too.
    assert requests.get(f"{server}/ui/prompts/{name}/diff?from=1&to=9", timeout=30).status_code == 404
    assert requests.get(f"{server}/ui/prompts/{name}/diff", timeout=30).status_code == 400


def test_links_the_client_prints_land_on_their_pages(server, browser, seeded):
    from selenium.webdriver.common.by import By

    # mlflow prints `🏃 View run … at http://HOST/#/experiments/1/runs/<id>`: the fragment never reaches
    # the server, so `/` reads it in the browser and goes to the matching /ui/ page.
    run, other = seeded["runs"][0], seeded["runs"][1]
    cases = [
        (f"/#/experiments/{seeded['exp']}/runs/{run}", f"/ui/runs/{run}"),
        (f"/#/experiments/{seeded['exp']}", f"/ui/experiments/{seeded['exp']}"),
        (f"/#/models/{seeded['model']}", f"/ui/models/{seeded['model']}"),
        (f"/#/models/{seeded['model']}/versions/1", f"/ui/models/{seeded['model']}/versions/1"),
        (f'/#/compare-runs?runs=["{run}","{other}"]&experiments=["{seeded["exp"]}"]', f"/ui/compare?runs={run},{other}"),
        ("/#/nothing/here", "/ui/"),
        ("/", "/ui/"),
    ]
    for path, landing in cases:
        browser.get(server + path)
        settled(browser, lambda d: d.current_url.startswith(server + "/ui/") and d.find_elements(By.TAG_NAME, "main"))
        assert browser.current_url == server + landing, (path, browser.current_url)
    # Without JavaScript the page still leads to the UI.
    html = requests.get(server + "/", timeout=30).text
    assert 'http-equiv="refresh"' in html and "/ui/static/route.js" in html


def test_model_version_page(server, browser):
    from selenium.webdriver.common.by import By
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    name = f"ui-version-{uuid.uuid4().hex[:6]}"
    mlflow.set_experiment(f"ui-version-{uuid.uuid4().hex[:6]}")
    X = pd.DataFrame({"petal <length>": [1.0, 2.0, 3.0, 4.0], "width": [0.1, 0.2, 0.3, 0.4]})
    y = np.array([0, 0, 1, 1])
    with mlflow.start_run(run_name="train-version") as run:
        mlflow.log_metric("accuracy", 0.93)
        mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model", input_example=X.head(2),
                                 registered_model_name=name)
    client = MlflowClient(server)
    client.update_model_version(name, "1", description="first <b>cut</b>")
    client.set_model_version_tag(name, "1", "validated", "yes")

    browser.get(f"{server}/ui/models/{name}")
    settled(browser, lambda d: d.find_elements(By.LINK_TEXT, "v1"))
    browser.find_element(By.LINK_TEXT, "v1").click()
    main = settled(browser, lambda d: "/versions/1" in d.current_url and d.find_element(By.TAG_NAME, "main").text)
    assert f"{name} v1" in main and "first <b>cut</b>" in main and not browser.find_elements(By.CSS_SELECTOR, "main b")
    assert "train-version" in main and "accuracy" in main and "0.93" in main
    assert "Flavors:" in main and "sklearn" in main
    # The signature's columns and the saved input example, from the model's own files.
    assert "petal <length>" in main and "width" in main and "double" in main, main
    assert "Input example" in main and "0.1" in main
    assert "validated" in main and "No approval request has named this version." in main
    assert browser.find_elements(By.CSS_SELECTOR, "main svg"), "the lineage diagram"
    shot(browser, "model-version")
    # The run page lists the model it produced and the version made from it; so does the experiment's list.
    exp_id = run.info.experiment_id
    for page in (f"/ui/runs/{run.info.run_id}", f"/ui/experiments/{exp_id}/models"):
        browser.get(server + page)
        table = settled(browser, lambda d: [t for t in d.find_elements(By.CSS_SELECTOR, "main table") if "Registered as" in t.text])
        assert f"{name} v1" in table[0].text and "model" in table[0].text, (page, table[0].text)
        table[0].find_element(By.LINK_TEXT, f"{name} v1")
    browser.get(f"{server}/ui/experiments/{exp_id}")
    settled(browser, lambda d: d.find_elements(By.LINK_TEXT, "logged models"))
    assert requests.get(f"{server}/ui/models/{name}/versions/9", timeout=30).status_code == 404
    assert requests.get(f"{server}/ui/models/{name}/versions/x", timeout=30).status_code == 400


def test_run_editing_from_the_run_page(server, browser):
    from selenium.webdriver.common.by import By

    client = MlflowClient(server)
    exp = client.create_experiment(f"ui-edit-{uuid.uuid4().hex[:6]}")
    run = client.create_run(exp, run_name="before", tags={"stage": "draft", "team": "<b>ml</b>"}).info.run_id
    browser.get(f"{server}/ui/runs/{run}")
    settled(browser, lambda d: d.find_elements(By.XPATH, "//summary[text()='Edit the run']"))

    def edit():
        details = browser.find_element(By.XPATH, "//summary[text()='Edit the run']/..")
        if not details.get_attribute("open"):
            browser.find_element(By.XPATH, "//summary[text()='Edit the run']").click()
        return details

    rename = edit().find_element(By.XPATH, ".//form[contains(@action, '/rename')]")
    name = rename.find_element(By.NAME, "name")
    name.clear()
    name.send_keys("after <rename>")
    rename.find_element(By.NAME, "actor").send_keys("carol")  # remembered for the next forms
    rename.find_element(By.XPATH, ".//button[text()='Rename']").click()
    settled(browser, lambda d: "after <rename>" in d.find_element(By.TAG_NAME, "h1").text)
    assert client.get_run(run).info.run_name == "after <rename>"

    d = edit()
    d.find_element(By.NAME, "key").send_keys("reviewed")
    d.find_element(By.NAME, "value").send_keys("yes")
    d.find_element(By.XPATH, ".//button[text()='Set tag']").click()
    settled(browser, lambda d_: "reviewed" in d_.find_element(By.ID, "tags").find_element(By.XPATH, "following-sibling::table").text)
    browser.find_element(By.CSS_SELECTOR, "button[aria-label='delete tag stage']").click()
    settled(browser, lambda d_: not d_.find_elements(By.CSS_SELECTOR, "button[aria-label='delete tag stage']"))
    tags = client.get_run(run).data.tags
    assert tags["reviewed"] == "yes" and "stage" not in tags and tags["team"] == "<b>ml</b>"
    assert not browser.find_elements(By.CSS_SELECTOR, "main b"), "tag values are shown as text"
    # The server's own tags cannot be deleted from the page.
    assert not browser.find_elements(By.CSS_SELECTOR, "button[aria-label^='delete tag mlflow.']")

    edit().find_element(By.XPATH, ".//button[text()='Delete the run']").click()
    settled(browser, lambda d_: edit().find_elements(By.XPATH, ".//button[text()='Restore the run']"))
    assert client.get_run(run).info.lifecycle_stage == "deleted"
    assert "deleted" in browser.find_element(By.TAG_NAME, "h1").text
    shot(browser, "run-edit")
    edit().find_element(By.XPATH, ".//button[text()='Restore the run']").click()
    settled(browser, lambda d_: edit().find_elements(By.XPATH, ".//button[text()='Delete the run']"))
    assert client.get_run(run).info.lifecycle_stage == "active" and "deleted" not in browser.find_element(By.TAG_NAME, "h1").text

    # A form without the page's token is refused, and changes nothing.
    r = requests.post(f"{server}/ui/runs/{run}/rename", data={"name": "forged"}, timeout=30)
    assert r.status_code == 403 and client.get_run(run).info.run_name == "after <rename>"


def test_images_by_step(server, browser):
    from selenium.webdriver.common.by import By
    import numpy as np

    mlflow.set_experiment(f"ui-images-{uuid.uuid4().hex[:6]}")
    with mlflow.start_run() as run:
        for step in (0, 5, 10):
            mlflow.log_image(np.full((8, 8, 3), step * 20, dtype=np.uint8), key="samples/grid", step=step)
        mlflow.log_image(np.zeros((4, 4, 3), dtype=np.uint8), key="masks", step=3)
    rid = run.info.run_id
    browser.get(f"{server}/ui/runs/{rid}")
    settled(browser, lambda d: d.find_elements(By.LINK_TEXT, "images by step"))
    browser.find_element(By.LINK_TEXT, "images by step").click()
    caption = settled(browser, lambda d: d.find_element(By.TAG_NAME, "figcaption").text)
    assert caption.startswith("masks, step 3"), caption  # keys in order; the latest step first
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.NAME, "key")).select_by_visible_text("samples/grid")
    browser.find_element(By.XPATH, "//button[text()='Show']").click()
    settled(browser, lambda d: "samples/grid, step" in d.find_element(By.TAG_NAME, "figcaption").text)
    browser.get(f"{server}/ui/runs/{rid}/images?key=samples/grid&step=7")
    caption = settled(browser, lambda d: d.find_element(By.TAG_NAME, "figcaption").text)
    assert caption.startswith("samples/grid, step 5"), caption  # the nearest logged step at or before 7
    assert "step 5 of 0–10 (3 images)" in browser.find_element(By.ID, "step-now").text
    browser.find_element(By.PARTIAL_LINK_TEXT, "step 10").click()
    settled(browser, lambda d: "step 10" in d.find_element(By.TAG_NAME, "figcaption").text)
    img = browser.find_element(By.CSS_SELECTOR, "figure img")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) == 8
    shot(browser, "images")


def test_charts_workspace(server, browser):
    """The charts workspace: runs chosen on the experiment page, every metric as a chart, a metric
    logged once as bars, hover read-outs, drag-to-zoom and reset, x-axis and log-scale controls, a
    20,000-point history reduced in the database with its spike kept, and one metric across an
    experiment's runs."""
    import math
    import time
    from urllib.parse import parse_qs, urlparse

    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    from mlflow.entities import Metric

    client = MlflowClient(server)
    name = f"ui-charts-{uuid.uuid4().hex[:6]}"
    exp = client.create_experiment(name)
    runs = []
    for i in range(3):
        r = client.create_run(exp, run_name=f"lr-{i}")
        rid = r.info.run_id
        t0 = int(time.time() * 1000)
        client.log_batch(rid, metrics=[Metric("loss", 2.0 * math.exp(-s / (20 + 10 * i)), t0 + s * 1000, s) for s in range(120)]
                         + [Metric("acc", 0.5 + s / 300, t0 + s * 1000, s) for s in range(120)])
        client.log_metric(rid, "final_auc", 0.8 + i * 0.05)
        client.set_terminated(rid)
        runs.append(rid)
    big = client.create_run(exp, run_name="long").info.run_id
    for k in range(0, 20_000, 1000):
        client.log_batch(big, metrics=[Metric("loss", 1.0 + (40.0 if s == 12_345 else math.sin(s / 500) * 0.1), 1_700_000_000_000 + s, s)
                                       for s in range(k, k + 1000)])

    def qs(d):
        return parse_qs(urlparse(d.current_url).query)

    def loss_chart(d):
        return d.find_element(By.CSS_SELECTOR, "figure[data-chart='loss']")

    # Choose two runs on the experiment page and chart them.
    browser.get(f"{server}/ui/experiments/{exp}")
    boxes = settled(browser, lambda d: {c.get_attribute("value"): c for c in d.find_elements(By.NAME, "runs")} or None)
    boxes[runs[0]].click()
    boxes[runs[1]].click()
    browser.find_element(By.ID, "chart-selected").click()
    chart = settled(browser, loss_chart)
    assert browser.current_url.split("?")[0].endswith("/ui/charts")
    assert len(chart.find_elements(By.CSS_SELECTOR, "polyline.series")) == 2
    assert chart.get_attribute("data-points") == "240"
    assert browser.find_element(By.CSS_SELECTOR, "figure[data-chart='acc']")
    bars = browser.find_element(By.CSS_SELECTOR, "figure[data-chart='final_auc']")
    assert bars.get_attribute("data-kind") == "bars" and len(bars.find_elements(By.TAG_NAME, "rect")) == 2

    # Hover: the read-out names both runs with their exact values at the nearest step.
    svg = chart.find_element(By.TAG_NAME, "svg")
    ActionChains(browser).move_to_element_with_offset(svg, 0, 0).perform()
    tip = settled(browser, lambda d: (t := loss_chart(d).find_element(By.CSS_SELECTOR, ".chart-tip")).is_displayed() and t.text)
    assert "lr-0: " in tip and "lr-1: " in tip and "step " in tip, tip
    shot(browser, "charts-workspace")

    # Drag across the middle to zoom, then double-click to reset.
    width = svg.size["width"]
    ActionChains(browser).move_to_element_with_offset(svg, -width // 8, 0).click_and_hold() \
        .move_to_element_with_offset(svg, width // 8, 0).release().perform()
    settled(browser, lambda d: "from" in qs(d) and "to" in qs(d))
    lo, hi = float(qs(browser)["from"][0]), float(qs(browser)["to"][0])
    assert 0 < lo < hi < 119, (lo, hi)
    zoomed = settled(browser, loss_chart)
    assert float(zoomed.get_attribute("data-x0")) == lo and float(zoomed.get_attribute("data-x1")) == hi
    assert browser.find_element(By.ID, "reset-zoom")
    shot(browser, "charts-zoomed")
    ActionChains(browser).double_click(zoomed.find_element(By.TAG_NAME, "svg")).perform()
    settled(browser, lambda d: "from" not in qs(d) and loss_chart(d).get_attribute("data-x1") == "119")

    # Controls apply on change: relative time, then a log scale.
    Select(browser.find_element(By.NAME, "xaxis")).select_by_value("relative")
    settled(browser, lambda d: loss_chart(d).get_attribute("data-axis") == "relative")
    assert loss_chart(browser).get_attribute("data-x0") == "0"
    browser.find_element(By.NAME, "log").click()
    settled(browser, lambda d: loss_chart(d).get_attribute("data-log") == "1")
    assert "log scale" in loss_chart(browser).text

    # 20,000 points: bucketed in the database, the band drawn, the spike on the line.
    browser.get(f"{server}/ui/charts?runs={big}")
    chart = settled(browser, loss_chart)
    assert chart.get_attribute("data-points") == "20000"
    line = chart.find_element(By.CSS_SELECTOR, "polyline.series")
    points = [p.split(" ") for p in line.get_attribute("data-xy").split(";")]
    assert len(points) <= 400 and sum(int(p[4]) for p in points) == 20_000
    assert max(float(p[3]) for p in points) == 41.0 and max(float(p[1]) for p in points) == 41.0
    assert chart.find_elements(By.CSS_SELECTOR, "polygon.band")
    shot(browser, "charts-long-history")
    # Zoomed close enough, the points are the logged ones.
    browser.get(f"{server}/ui/charts?runs={big}&from=12300&to=12400")
    chart = settled(browser, loss_chart)
    points = [p.split(" ") for p in chart.find_element(By.CSS_SELECTOR, "polyline.series").get_attribute("data-xy").split(";")]
    assert [int(p[0]) for p in points] == list(range(12300, 12401)) and all(p[4] == "1" for p in points)

    # One metric across the experiment's runs; a metric logged once is bars.
    browser.get(f"{server}/ui/experiments/{exp}")
    settled(browser, lambda d: d.find_element(By.ID, "experiment-chart")).click()
    settled(browser, lambda d: d.find_element(By.CSS_SELECTOR, "figure[data-chart='acc']"))  # the first key
    Select(browser.find_element(By.NAME, "metric")).select_by_value("loss")
    chart = settled(browser, loss_chart)
    assert len(chart.find_elements(By.CSS_SELECTOR, "polyline.series")) == 4
    Select(browser.find_element(By.NAME, "metric")).select_by_value("final_auc")
    bars = settled(browser, lambda d: d.find_element(By.CSS_SELECTOR, "figure[data-chart='final_auc']"))
    assert len(bars.find_elements(By.TAG_NAME, "rect")) == 3
    shot(browser, "experiment-chart")

    # A bad control is a clear 400 page, not a chart.
    r = requests.get(f"{server}/ui/charts", params={"runs": runs[0], "smooth": "2"}, timeout=30)
    assert r.status_code == 400 and "smooth must be a number from 0 to 0.99" in r.text
