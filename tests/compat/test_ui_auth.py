"""The web UI with authentication on (issue 10), in headless Chromium: the login form and the
current user in the header, a wrong password, logout, a personal access token shown once, the admin
page closed to non-admins and used by an admin to grant, and the experiments list hiding what the
user may not read. One server for the module, started with `--app-name basic-auth` and its own
INI file (bcrypt at cost 4, so logins are quick)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import requests

from conftest import start_server, stop_server
from test_ui_browser import browser, settled, shot  # noqa: F401  (the module's headless Chromium)

pytestmark = pytest.mark.reprise_only

API = "/api/2.0/mlflow"
G = "/api/reprise/v1"
ADMIN_PW = "admin-Passw0rd-2025"


def pw(name: str) -> str:
    return f"{name}-Passw0rd-2025"


@pytest.fixture(scope="module")
def auth_ui(tmp_path_factory):
    tmp = Path(tmp_path_factory.mktemp("ui-auth"))
    ini = tmp / "auth.ini"
    ini.write_text(f"[mlflow]\ndefault_permission = READ\nadmin_username = admin\nadmin_password = {ADMIN_PW}\n")
    url = start_server(
        tmp, extra_args=("--app-name", "basic-auth"),
        env_extra={"MLFLOW_AUTH_CONFIG_PATH": str(ini), "REPRISE_BCRYPT_COST": "4"},
        env_remove=("MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_TRACKING_USERNAME",
                    "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"))
    admin = requests.Session()
    admin.auth = ("admin", ADMIN_PW)
    for name in ("alice", "bob"):
        r = admin.post(f"{url}{API}/users/create", json={"username": name, "password": pw(name)}, timeout=30)
        assert r.status_code == 200, r.text
    try:
        yield url
    finally:
        stop_server(url)


def wait_for(b):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(b, 20)


def wait_for_row(b, xpath, needle):
    """The text of the first row matching `xpath` that contains `needle`, once the page shows one
    (see `settled`: the row is looked up afresh on every poll, so a reload in between is harmless)."""
    from selenium.webdriver.common.by import By

    return settled(b, lambda d: next((t for t in (r.text for r in d.find_elements(By.XPATH, xpath))
                                      if needle in t), False))


def login(b, server, user, password=None, path="/ui/"):
    """Opens `path` signed out, is sent to the login form, signs in."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    b.delete_all_cookies()
    b.get(f"{server}{path}")
    wait_for(b).until(EC.presence_of_element_located((By.ID, "login-form")))
    assert "/ui/login?next=" in b.current_url
    b.find_element(By.NAME, "username").send_keys(user)
    b.find_element(By.NAME, "password").send_keys(password if password is not None else pw(user))
    b.find_element(By.ID, "sign-in").click()


def signed_in_as(b, user):
    from selenium.webdriver.common.by import By

    assert settled(b, lambda d: d.find_element(By.ID, "current-user").text) == user


def session_of(b) -> requests.Session:
    """A requests session holding the browser's cookies (for status codes Selenium cannot see)."""
    s = requests.Session()
    for c in b.get_cookies():
        s.cookies.set(c["name"], c["value"])
    return s


def test_login_shows_user_then_logout(auth_ui, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    b = browser
    login(b, auth_ui, "alice", path="/ui/models")
    signed_in_as(b, "alice")
    # Back where the login started, as alice; the logged-in user acts, so no "You are" field.
    assert b.current_url == f"{auth_ui}/ui/models"
    b.get(f"{auth_ui}/ui/")
    signed_in_as(b, "alice")
    assert not b.find_elements(By.NAME, "actor")
    assert b.find_elements(By.LINK_TEXT, "Tokens") and not b.find_elements(By.LINK_TEXT, "Admin")
    cookie = b.get_cookie("reprise_session")
    assert cookie and cookie["httpOnly"] and cookie.get("sameSite") == "Lax" and cookie["path"] == "/"
    shot(b, "auth-signed-in")

    b.find_element(By.ID, "logout").click()
    wait_for(b).until(EC.presence_of_element_located((By.ID, "login-form")))
    assert b.get_cookie("reprise_session") is None
    b.get(f"{auth_ui}/ui/")
    wait_for(b).until(EC.presence_of_element_located((By.ID, "login-form")))
    assert not b.find_elements(By.ID, "current-user")


def test_wrong_password_and_unknown_user(auth_ui, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    b = browser
    messages = []
    for user, password in (("alice", "not-her-password-at-all"), ("nobody-" + uuid.uuid4().hex[:6], "whatever-password-1")):
        login(b, auth_ui, user, password)
        err = wait_for(b).until(EC.presence_of_element_located((By.ID, "login-error")))
        messages.append(err.text)
        assert b.get_cookie("reprise_session") is None
        assert not b.find_elements(By.ID, "current-user")
        # The user name stays filled in; the password does not.
        assert b.find_element(By.NAME, "username").get_attribute("value") == user
        assert b.find_element(By.NAME, "password").get_attribute("value") == ""
    shot(b, "auth-wrong-password")
    # No hint which of the two was wrong.
    assert messages[0] == messages[1] and "Wrong user name or password" in messages[0]


def test_login_form_rules(auth_ui):
    """Wire details: 401 on bad credentials, the CSRF check, no open redirect, cookie attributes."""
    s = requests.Session()
    r = s.get(f"{auth_ui}/ui/login", timeout=30)
    assert r.status_code == 200
    csrf = s.cookies["reprise_csrf"]
    assert f'name="csrf" value="{csrf}"' in r.text
    form = {"csrf": csrf, "username": "alice", "password": "wrong-password-123"}
    r = s.post(f"{auth_ui}/ui/login", data=form, allow_redirects=False, timeout=30)
    assert r.status_code == 401 and "WWW-Authenticate" not in r.headers and "reprise_session" not in r.headers.get("Set-Cookie", "")
    # Without the token, or from another origin: refused before the password is looked at.
    ok = {**form, "password": pw("alice")}
    assert s.post(f"{auth_ui}/ui/login", data={k: v for k, v in ok.items() if k != "csrf"}, allow_redirects=False, timeout=30).status_code == 403
    assert s.post(f"{auth_ui}/ui/login", data=ok, headers={"Origin": "http://evil.example"}, allow_redirects=False, timeout=30).status_code == 403
    # `next` must be a page of this UI.
    for nxt, expected in [("https://evil.example/ui/", "/ui/"), ("//evil.example/ui", "/ui/"), ("/uievil", "/ui/"),
                          ("/api/2.0/mlflow/users/list", "/ui/"), ("/ui/models?x=1", "/ui/models?x=1")]:
        r = s.post(f"{auth_ui}/ui/login", data={**ok, "next": nxt}, allow_redirects=False, timeout=30)
        assert r.status_code == 303 and r.headers["Location"] == expected, (nxt, r.status_code, r.headers.get("Location"))
        attrs = [a.strip() for a in r.headers["Set-Cookie"].split(";")]
        assert attrs[0].startswith("reprise_session=") and {"Path=/", "HttpOnly", "SameSite=Lax"} <= set(attrs)
    # The session works for the API too, and a UI form without CSRF is refused even when signed in.
    assert s.get(f"{auth_ui}{G}/whoami", timeout=30).json()["username"] == "alice"
    assert s.post(f"{auth_ui}/ui/logout", data={}, allow_redirects=False, timeout=30).status_code == 403


def test_token_is_shown_once(auth_ui, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    b = browser
    login(b, auth_ui, "alice")
    signed_in_as(b, "alice")
    b.find_element(By.LINK_TEXT, "Tokens").click()
    form = wait_for(b).until(EC.presence_of_element_located((By.ID, "new-token-form")))
    name = f"laptop-{uuid.uuid4().hex[:6]}"
    form.find_element(By.NAME, "name").send_keys(name)
    form.find_element(By.TAG_NAME, "button").click()
    secret = wait_for(b).until(EC.presence_of_element_located((By.ID, "new-token"))).text
    assert secret.startswith("rpt_")
    shot(b, "auth-token-created")
    who = requests.get(f"{auth_ui}{G}/whoami", headers={"Authorization": f"Bearer {secret}"}, timeout=30).json()
    assert who["username"] == "alice" and who["method"] == "token"

    # Never again: not on the tokens page, which lists the token by name.
    b.get(f"{auth_ui}/ui/tokens")
    wait_for(b).until(EC.presence_of_element_located((By.ID, "new-token-form")))
    assert not b.find_elements(By.ID, "new-token") and secret not in b.page_source
    row = b.find_element(By.XPATH, f"//tr[td[text()='{name}']]")
    assert "active" in row.text

    # Revoked, it no longer works.
    row.find_element(By.XPATH, ".//button[text()='Revoke']").click()
    # The form posts and the page reloads; the row says "revoked" only on the new page.
    assert "revoked" in wait_for_row(b, f"//tr[td[text()='{name}']]", "revoked")
    r = requests.get(f"{auth_ui}{G}/whoami", headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    assert r.status_code == 401


def test_admin_page_is_for_admins(auth_ui, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    b = browser
    login(b, auth_ui, "alice")
    signed_in_as(b, "alice")
    b.get(f"{auth_ui}/ui/admin")
    assert "Not allowed" in b.find_element(By.TAG_NAME, "body").text
    assert session_of(b).get(f"{auth_ui}/ui/admin", allow_redirects=False, timeout=30).status_code == 403

    login(b, auth_ui, "admin", ADMIN_PW)
    signed_in_as(b, "admin")
    b.find_element(By.LINK_TEXT, "Admin").click()
    wait_for(b).until(EC.presence_of_element_located((By.ID, "create-user")))
    users = [e.text for e in b.find_elements(By.CSS_SELECTOR, "[data-user]")]
    assert {"admin", "alice", "bob"} <= set(users)
    shot(b, "auth-admin")


def test_reader_does_not_see_what_they_may_not_read(auth_ui, browser):  # noqa: F811
    """An admin denies bob one experiment from the admin page; bob's experiment list leaves it out
    and its page refuses him; alice (no grant, default READ) sees both."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select

    admin = requests.Session()
    admin.auth = ("admin", ADMIN_PW)
    hidden, shown = f"hidden-{uuid.uuid4().hex[:6]}", f"shown-{uuid.uuid4().hex[:6]}"
    ids = {}
    for name in (hidden, shown):
        r = admin.post(f"{auth_ui}{API}/experiments/create", json={"name": name}, timeout=30)
        assert r.status_code == 200, r.text
        ids[name] = r.json()["experiment_id"]

    b = browser
    login(b, auth_ui, "admin", ADMIN_PW, path="/ui/admin")
    form = wait_for(b).until(EC.presence_of_element_located((By.ID, "create-grant")))
    Select(form.find_element(By.NAME, "holder")).select_by_value("user:bob")
    Select(form.find_element(By.NAME, "permission")).select_by_value("DENY")
    Select(form.find_element(By.NAME, "resource_type")).select_by_value("experiment")
    form.find_element(By.NAME, "resource").send_keys(ids[hidden])
    form.find_element(By.TAG_NAME, "button").click()
    # The form posts and the admin page reloads; the grant's row exists only on the new page.
    assert "DENY" in wait_for_row(b, f"//tr[td/code[text()='{ids[hidden]}'] and td/strong[text()='bob']]", "DENY")

    login(b, auth_ui, "bob")
    signed_in_as(b, "bob")
    names = [a.text for a in b.find_elements(By.CSS_SELECTOR, "main table a")]
    assert shown in names and hidden not in names
    shot(b, "auth-reader-experiments")
    b.get(f"{auth_ui}/ui/experiments/{ids[hidden]}")
    assert "Not allowed" in b.find_element(By.TAG_NAME, "body").text

    login(b, auth_ui, "alice")
    signed_in_as(b, "alice")
    names = [a.text for a in b.find_elements(By.CSS_SELECTOR, "main table a")]
    assert shown in names and hidden in names
