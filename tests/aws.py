"""A local AWS for tests: a moto server process (Secrets Manager, SSM, STS, IAM, S3).

Use it from a test module (it is not a conftest, so import what you need)::

    from tests.aws import aws_env, moto_server  # noqa: F401  (pytest fixtures)

* ``moto_server`` (session scope): a ``moto_server`` process on 127.0.0.1 with a free
  port, separate from the test process (deltalake and pyarrow clients need a real
  endpoint; an in-process threaded server can deadlock them). Stopped at the end.
* ``aws_env`` (function scope): points boto3 at that server through the environment
  (``AWS_ENDPOINT_URL``, test credentials ``testing``/``testing``, ``us-east-1``), hides
  the real AWS configuration, and resets the server's state after the test.

Helpers: :func:`assumed_role_session` (an STS ``assume_role`` identity, which is what
SageMaker and Databricks give a notebook) and :meth:`MotoServer.iam_enforced` (moto then
checks IAM policies, so access-denied paths can be tested).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account

# Environment that could point boto3 at real AWS or a real profile.
_HIDDEN_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_REGION",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CA_BUNDLE",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "CLOUDSDK_API_KEY",
)


@dataclass
class MotoServer:
    """A running moto server process."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def _post(self, path: str, body: bytes = b"") -> dict[str, Any]:
        request = urllib.request.Request(
            self.url + path, data=body, method="POST", headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            result: dict[str, Any] = json.loads(response.read() or b"{}")
            return result

    def reset(self) -> None:
        """Forget every resource (roles, secrets, parameters, buckets) and stop enforcing IAM."""
        self.set_iam_enforcement(False)
        self._post("/moto-api/reset")

    def set_iam_enforcement(self, enabled: bool) -> None:
        """Make moto check signatures and IAM policies on every request (or stop)."""
        self._post("/moto-api/reset-auth", b"0" if enabled else b"inf")

    @contextlib.contextmanager
    def iam_enforced(self) -> Iterator[None]:
        """Within the block, requests need credentials whose IAM policies allow them."""
        self.set_iam_enforcement(True)
        try:
            yield
        finally:
            self.set_iam_enforcement(False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _moto_command(port: int) -> list[str]:
    script = Path(sys.executable).with_name("moto_server")
    args = ["-H", "127.0.0.1", "-p", str(port)]
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "moto.server", *args]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/moto-api/data.json", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_moto_server(log_path: Path, *, timeout_s: float = 30.0) -> MotoServer:
    """Start ``moto_server`` on a free loopback port and wait until it answers."""
    last_error = "did not start"
    for _attempt in range(3):  # another process may take the free port before moto binds it
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log = log_path.open("ab")
        try:
            process = subprocess.Popen(
                _moto_command(port), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                last_error = f"exited with status {process.returncode}"
                break
            if _answers(url):
                return MotoServer(url=url, process=process, log_path=log_path)
            time.sleep(0.1)
        else:
            last_error = f"did not answer within {timeout_s} s"
        stop_moto_server(process)
    tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
    raise RuntimeError(f"moto_server {last_error}; its log:\n{tail}")


def stop_moto_server(process: subprocess.Popen[bytes]) -> None:
    """Terminate the process, then kill it if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# Each test module that imports the fixture holds its own (session-scoped) definition of it;
# they share one process, stopped when the last of them is torn down.
_shared: dict[str, Any] = {"server": None, "users": 0}


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A moto server process on 127.0.0.1 for the whole test session."""
    if _shared["server"] is None or _shared["server"].process.poll() is not None:
        _shared["server"] = start_moto_server(tmp_path_factory.mktemp("moto") / "moto_server.log")
    _shared["users"] += 1
    server: MotoServer = _shared["server"]
    try:
        yield server
    finally:
        _shared["users"] -= 1
        if _shared["users"] == 0:
            stop_moto_server(server.process)
            _shared["server"] = None


@pytest.fixture
def aws_env(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    """boto3 talks to the moto server through the environment; state is reset afterwards."""
    for name in _HIDDEN_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    moto_server.reset()
    try:
        yield moto_server
    finally:
        moto_server.reset()


def admin_session(region: str = REGION) -> Any:
    """A boto3 session with moto's default (all-powerful) test credentials."""
    import boto3

    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
    )


def create_role(name: str, *, path: str = "/", policy: dict[str, Any] | None = None) -> str:
    """Create an IAM role (with an optional inline policy) and return its ARN."""
    iam = admin_session().client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
             "Action": "sts:AssumeRole"}
        ],
    }
    arn: str = iam.create_role(
        RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    if policy is not None:
        iam.put_role_policy(RoleName=name, PolicyName=f"{name}-policy",
                            PolicyDocument=json.dumps(policy))
    return arn


def assumed_role_session(
    role_name: str,
    *,
    path: str = "/",
    policy: dict[str, Any] | None = None,
    region: str = REGION,
    session_name: str = "notebook",
) -> Any:
    """Create ``role_name`` and return a boto3 session holding its ``assume_role`` credentials.

    STS GetCallerIdentity then reports ``arn:aws:sts::<acct>:assumed-role/<role>/<session>``,
    as on a SageMaker notebook or a Databricks cluster with an instance profile.
    """
    import boto3

    arn = create_role(role_name, path=path, policy=policy)
    credentials = admin_session(region).client("sts").assume_role(
        RoleArn=arn, RoleSessionName=session_name
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )
