"""The admin commands: ``cloudsdk project|user|apikey ...`` on a data directory."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudsdk import cli
from cloudsdk.cli import main
from cloudsdk.errors import AuthenticationError
from cloudsdk.store import FeatureStoreService
from cloudsdk.store.security import ROLES, SecurityService

KEY_RE = re.compile(r"^csk_[0-9a-f]{12}\.[A-Za-z0-9_-]{43}$")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def run(data_dir: Path, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run ``cloudsdk ARGS --data-dir DATA``; returns (status, stdout, stderr)."""
    def _run(*args: str, data: bool = True) -> tuple[int, str, str]:
        capsys.readouterr()
        status = main([*args, *(["--data-dir", str(data_dir)] if data else [])])
        out, err = capsys.readouterr()
        return status, out, err
    return _run


@pytest.fixture
def security(data_dir: Path) -> Iterator[SecurityService]:
    """The security service of the same data directory (opened after the commands ran)."""
    services: list[FeatureStoreService] = []

    def _open() -> SecurityService:
        services.append(FeatureStoreService(data_dir))
        return SecurityService(services[-1].catalog)

    yield _open  # type: ignore[misc]
    for service in services:
        service.close()


def test_roles_match_the_store() -> None:
    assert cli.ROLES == ROLES


def test_projects_users_members(run, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    assert run("project", "create", "fraud", "--description", "fraud team") == (
        0, "created project 'fraud' with feature store 'fraud_featurestore'\n", "")
    assert run("project", "create", "marketing")[0] == 0
    assert run("user", "create", "alice") == (0, "created user 'alice'\n", "")
    assert run("user", "create", "bob")[0] == 0
    assert run("project", "add-member", "fraud", "alice", "--role", "data_owner")[0] == 0
    status, out, _ = run("project", "add-member", "fraud", "bob", "--role", "data_scientist")
    assert status == 0 and out == "user 'bob' is a data_scientist in project 'fraud'\n"
    status, out, _ = run("project", "members", "fraud")
    assert out.splitlines() == ["USER   ROLE", "alice  data_owner", "bob    data_scientist"]
    status, out, _ = run("project", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["PROJECT", "FEATURESTORE", "MEMBERS", "DESCRIPTION"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["default", "default_featurestore", "0"], ["fraud", "fraud_featurestore", "2"],
        ["marketing", "marketing_featurestore", "0"]]
    assert lines[2].endswith("fraud team")
    status, out, _ = run("user", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["USER", "CREATED", "PROJECTS"]
    assert lines[1].startswith("alice") and lines[1].endswith("fraud (data_owner)")
    assert run("project", "remove-member", "fraud", "bob") == (
        0, "removed user 'bob' from project 'fraud'\n", "")
    assert run("project", "members", "fraud")[1].splitlines()[1:] == ["alice  data_owner"]
    assert (data_dir / "catalog.db").exists()


def test_share_and_unshare(run, security) -> None:  # type: ignore[no-untyped-def]
    run("project", "create", "fraud")
    run("project", "create", "marketing")
    status, out, _ = run("project", "share", "fraud", "--with", "marketing")
    assert status == 0 and "'marketing' can now read the feature store 'fraud_featurestore'" in out
    assert security().readable_featurestores("marketing") == ["marketing_featurestore", "fraud_featurestore"]
    status, out, _ = run("project", "unshare", "fraud", "--with", "marketing")
    assert status == 0 and "no longer" in out
    assert security().readable_featurestores("marketing") == ["marketing_featurestore"]


def test_api_keys(run, security) -> None:  # type: ignore[no-untyped-def]
    run("project", "create", "fraud")
    run("user", "create", "alice")
    run("project", "add-member", "fraud", "alice", "--role", "data_owner")
    status, out, err = run("apikey", "create", "--user", "alice", "--name", "nb", "--scopes", "featurestore,project")
    assert status == 0
    key = out.strip()
    assert out == key + "\n" and KEY_RE.match(key)
    assert "will not be shown again" in err and key not in err and len(err.splitlines()) == 1
    sec = security()
    principal = sec.authenticate(key)
    assert (principal.user, principal.key_name, principal.scopes) == ("alice", "nb", frozenset({"featurestore", "project"}))
    assert sec.authorize(principal, "fraud", write=True) == "data_owner"

    status, out, _ = run("apikey", "create", "--user", "alice", "--name", "other")  # default scope
    assert status == 0 and security().list_api_keys("alice")[1]["scopes"] == ["featurestore"]

    status, out, _ = run("apikey", "list")
    secret = key.split(".")[1]
    assert status == 0 and secret not in out
    lines = out.splitlines()
    assert lines[0].split() == ["USER", "NAME", "PREFIX", "SCOPES", "CREATED", "LAST_USED", "STATUS"]
    row = lines[1].split()
    assert row[:4] == ["alice", "nb", key.split(".")[0], "featurestore,project"] and row[-1] == "active"
    assert row[-2] != "never"  # it was used above
    assert lines[2].split()[1] == "other" and lines[2].split()[-2:] == ["never", "active"]

    assert run("apikey", "revoke", "--user", "alice", "--name", "nb") == (
        0, "revoked API key 'nb' of user 'alice'\n", "")
    with pytest.raises(AuthenticationError, match="revoked"):
        security().authenticate(key)
    status, out, _ = run("apikey", "list", "--user", "alice")
    assert [line.split()[-1] for line in out.splitlines()[1:]] == ["revoked", "active"]


def test_user_errors_are_one_line(run) -> None:  # type: ignore[no-untyped-def]
    run("user", "create", "alice")
    cases = [
        (("user", "create", "alice"), "cloudsdk user create: error: user 'alice' already exists"),
        (("user", "create", "Bad"), "cloudsdk user create: error: invalid user name 'Bad'"),
        (("project", "add-member", "ghost", "alice", "--role", "data_owner"),
         "cloudsdk project add-member: error: no project named 'ghost'"),
        (("project", "members", "ghost"), "cloudsdk project members: error: no project named 'ghost'"),
        (("apikey", "create", "--user", "bob", "--name", "nb"), "cloudsdk apikey create: error: no user named 'bob'"),
        (("apikey", "create", "--user", "alice", "--name", "nb", "--scopes", "admin"),
         "cloudsdk apikey create: error: unknown API key scope 'admin'"),
        (("apikey", "revoke", "--user", "alice", "--name", "nb"),
         "cloudsdk apikey revoke: error: user 'alice' has no API key named 'nb'"),
        (("project", "share", "default", "--with", "default"), "cloudsdk project share: error:"),
    ]
    for args, message in cases:
        status, out, err = run(*args)
        assert status == 2, args
        assert out == "" and err.startswith(message), (args, err)
        assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_usage_errors(run) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as info:
        run("project", "add-member", "fraud", "alice", "--role", "admin")
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        run("project", data=False)
    with pytest.raises(SystemExit):
        run("apikey", "create", "--user", "alice")  # no --name


def test_default_data_dir_and_metadata_url(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    monkeypatch.setenv("CLOUDSDK_HOME", str(home))
    assert run("user", "create", "alice", data=False)[0] == 0
    assert (home / "catalog.db").exists()
    assert run("user", "list", data=False)[1].splitlines()[1].startswith("alice")
    meta = tmp_path / "elsewhere" / "meta.db"
    meta.parent.mkdir()
    assert main(["user", "create", "bob", "--data-dir", str(tmp_path / "d2"),
                 "--metadata-url", f"sqlite:///{meta}"]) == 0
    assert meta.exists() and not (tmp_path / "d2" / "catalog.db").exists()


def _console_script() -> str:
    script = Path(sys.executable).with_name("cloudsdk")
    return str(script) if script.exists() else (shutil.which("cloudsdk") or "cloudsdk")


def test_console_script(data_dir: Path) -> None:
    def cloudsdk(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([_console_script(), *args, "--data-dir", str(data_dir)],
                              capture_output=True, text=True, timeout=120)

    assert cloudsdk("user", "create", "alice").returncode == 0
    proc = cloudsdk("apikey", "create", "--user", "alice", "--name", "nb", "--scopes", "featurestore")
    assert proc.returncode == 0, proc.stderr
    assert KEY_RE.match(proc.stdout.strip()) and "will not be shown again" in proc.stderr
    proc = cloudsdk("user", "create", "alice")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "cloudsdk user create: error: user 'alice' already exists"


# --- the project's online store -------------------------------------------------------------

@pytest.fixture
def mariadb_user() -> Iterator[tuple[str, str, str]]:
    """A fresh MariaDB database and a user with a password that may use it: (database, user, password)."""
    import secrets

    import pymysql

    tag = secrets.token_hex(5)
    database, user, password = f"cli_{tag}", f"cli_{tag}", f"Pw{secrets.token_hex(8)}"
    admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True)
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{database}`")
        cur.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'")
        cur.execute(f"GRANT ALL ON `{database}`.* TO '{user}'@'127.0.0.1'")
    try:
        yield database, user, password
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
            cur.execute(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")
        admin.close()


def _settings(out: str) -> dict[str, str]:
    lines = out.splitlines()
    assert lines[0].split() == ["SETTING", "VALUE"]
    return {name: value for name, value in (line.split(None, 1) for line in lines[1:])}


def test_online_store_commands(run, data_dir: Path, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                               mariadb_user: tuple[str, str, str]) -> None:
    import io

    database, user, password = mariadb_user
    run("project", "create", "fraud")
    status, out, err = run("project", "online-store", "fraud")
    info = _settings(out)
    assert status == 0 and err == ""
    assert info["backend"] == "sqlite" and info["url"].endswith("online.db")

    url = f"mysql://{user}:{password}@127.0.0.1:3306/{database}"
    monkeypatch.setattr("sys.stdin", io.StringIO(url + "\n"))
    status, out, err = run("project", "set-online-store", "fraud", "--url-stdin")
    assert (status, err) == (0, "")
    assert out == (f"project 'fraud' stores its online feature groups in mysql "
                   f"(mysql://{user}@127.0.0.1:3306/{database})\n")
    status, out, err = run("project", "online-store", "fraud")
    info = _settings(out)
    assert status == 0 and password not in out + err
    assert info == {"backend": "mysql", "url": f"mysql://{user}@127.0.0.1:3306/{database}", "host": "127.0.0.1",
                    "port": "3306", "database": database, "user": user,
                    "jdbc_url": f"jdbc:mysql://127.0.0.1:3306/{database}"}
    assert password.encode() not in (data_dir / "catalog.db").read_bytes()  # sealed, not in clear

    # --url works too, but a password on the command line gets a warning (and is not echoed)
    status, out, err = run("project", "set-online-store", "fraud", "--url", url)
    assert status == 0 and password not in out + err
    assert err.startswith("cloudsdk project set-online-store: warning: the URL holds a password")
    assert "--url-stdin" in err


def test_online_store_command_errors(run, data_dir: Path,  # type: ignore[no-untyped-def]
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import uuid

    import pyarrow as pa
    import redis

    run("project", "create", "fraud")
    prefix = f"tcli{uuid.uuid4().hex[:8]}:"
    status, out, _ = run("project", "set-online-store", "fraud", "--url", f"redis://127.0.0.1:6379/0?prefix={prefix}")
    assert status == 0
    assert out == ("project 'fraud' stores its online feature groups in redis "
                   f"(redis://127.0.0.1:6379/0, prefix {prefix})\n")

    # a password in a URL that fails: the error is one line and does not hold the password
    monkeypatch.setattr("sys.stdin", io.StringIO("redis://someone:Sup3rSecretPw@127.0.0.1:1/0\n"))
    status, out, err = run("project", "set-online-store", "fraud", "--url-stdin")
    assert status == 2 and out == "" and len(err.splitlines()) == 1
    assert err.startswith("cloudsdk project set-online-store: error: cannot open the Redis online store")
    assert "Sup3rSecretPw" not in err
    assert _settings(run("project", "online-store", "fraud")[1])["prefix"] == prefix  # unchanged

    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert run("project", "set-online-store", "fraud", "--url-stdin") == (
        2, "", "cloudsdk project set-online-store: --url-stdin read an empty line\n")
    cases = [
        (("project", "set-online-store", "ghost", "--url", "sqlite:///x.db"),
         "cloudsdk project set-online-store: error: no project named 'ghost'"),
        (("project", "set-online-store", "fraud", "--url", "ftp://host/x"),
         "cloudsdk project set-online-store: error: unknown online store URL scheme 'ftp'"),
        (("project", "online-store", "ghost"), "cloudsdk project online-store: error: no project named 'ghost'"),
    ]
    for args, message in cases:
        status, out, err = run(*args)
        assert status == 2 and out == "" and err.startswith(message), (args, err)
        assert len(err.splitlines()) == 1

    # refused while the project has feature groups stored online
    service = FeatureStoreService(data_dir)
    try:
        service.create_group("fraud", "cards", 1, pa.table({"id": [1], "x": [0.5]}), primary_key=["id"],
                             online_enabled=True)
    finally:
        service.close()
    status, out, err = run("project", "set-online-store", "fraud", "--url", "redis://127.0.0.1:6379/0")
    assert status == 2 and "has feature groups stored online (cards)" in err
    service = FeatureStoreService(data_dir)
    try:
        service.delete_group("fraud", "cards", 1)
    finally:
        service.close()
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        assert list(client.scan_iter(match=f"{prefix}*")) == []  # deleting the group removed its keys
    finally:
        client.close()

    with pytest.raises(SystemExit):  # --url and --url-stdin exclude each other; one is required
        run("project", "set-online-store", "fraud", "--url", "sqlite:///x.db", "--url-stdin")
    with pytest.raises(SystemExit):
        run("project", "set-online-store", "fraud")
