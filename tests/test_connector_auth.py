"""API keys for connect(host, ...): value, file, env, Parameter Store and Secrets Manager.

The AWS cases run against a moto server process (tests/aws.py) with an identity obtained
through STS assume_role, as on SageMaker or Databricks.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import pickle
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from cloudsdk.client.auth import (
    ApiKey,
    obtain_api_key,
    parameter_name,
    role_from_arn,
    secret_id,
)
from cloudsdk.errors import (
    CloudSDKError,
    CredentialsError,
    InvalidArgumentError,
    SecretAccessDeniedError,
    SecretNotFoundError,
)
from tests import aws
from tests.aws import REGION, MotoServer, admin_session, assumed_role_session

# The local-AWS fixtures (a moto server process and an environment pointing at it).
moto_server = aws.moto_server
aws_env = aws.aws_env

HOST = "fs.example.com"
ROLE = "SageMakerNotebookRole"
SM_KEY = "sm-key.Q3vX9pL2mN7rT4yW8zB1cD6fG0hJ5kS"
SSM_KEY = "ssm-key.A8bC3dE7fG1hJ5kL9mN2pQ6rS0tU4vW"
FILE_KEY = "file-key.Z1yX2wV3uT4sR5qP6oN7mL8kJ9iH0gF"
VALUE_KEY = "value-key.M5nB6vC7xZ8aS9dF0gH1jK2lQ3wE4rT"
ENV_KEY = "env-key.P0oI9uY8tR7eW6qA5sD4fG3hJ2kL1zX"
ALL_KEYS = (SM_KEY, SSM_KEY, FILE_KEY, VALUE_KEY, ENV_KEY)

ALLOW_READ = {
    "Version": "2012-10-17",
    "Statement": [
        # moto checks actions against the resource "*", so the policies in
        # docs/connecting.md (scoped to the secret's and parameter's ARNs) cannot be
        # evaluated here; their JSON is checked by test_docs_policies_are_json.
        {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue", "ssm:GetParameter"],
         "Resource": "*"},
    ],
}


def store_keys(role: str = ROLE, *, prefix: str = "hopsworks/role/", region: str = REGION) -> None:
    """The key in Secrets Manager (JSON) and Parameter Store (SecureString), seed names."""
    admin = admin_session(region)
    admin.client("secretsmanager").create_secret(
        Name=f"{prefix}{role}", SecretString=json.dumps({"api-key": SM_KEY, "other": "x"})
    )
    admin.client("ssm").put_parameter(
        Name=f"/{prefix}{role}/type/api-key", Value=SSM_KEY, Type="SecureString"
    )


def _texts(exc: BaseException) -> str:
    """Everything an exception shows: its traceback with causes, reprs, args, context."""
    parts = ["".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        parts += [str(e), repr(e), repr(e.args)]
        if isinstance(e, CloudSDKError):
            parts.append(repr(e.context))
        stack += [e.__cause__, e.__context__]
    return "\n".join(parts)


@pytest.fixture(autouse=True)
def _no_key_leaks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """cloudsdk's own log records (at DEBUG) never show a key."""
    caplog.set_level(logging.DEBUG)
    yield
    messages = [r.getMessage() for when in ("setup", "call") for r in caplog.get_records(when)
                if r.name.startswith("cloudsdk")]
    for key in ALL_KEYS:
        assert not [m for m in messages if key in m]


def obtain(**kwargs: Any) -> ApiKey:
    """obtain_api_key, checking that it leaves os.environ exactly as it was."""
    before = dict(os.environ)
    try:
        key = obtain_api_key(**kwargs)
    finally:
        assert dict(os.environ) == before
    if not key.source.startswith("env:"):
        assert all(key.value not in value for value in os.environ.values())
    return key


def raises(kind: type[CloudSDKError], call: Callable[[], Any], *must_name: str) -> CloudSDKError:
    """Assert ``call`` raises ``kind``, whose message names each of ``must_name`` and no key."""
    with pytest.raises(kind) as info:
        call()
    exc = info.value
    for word in must_name:
        assert word in str(exc), f"{word!r} not in {str(exc)!r}"
    text = _texts(exc)
    for key in ALL_KEYS:
        assert key not in text
    return exc


# ------------------------------------------------------------------------ ApiKey


def test_api_key_masks_itself() -> None:
    key = ApiKey(VALUE_KEY)
    assert key.value == VALUE_KEY
    for shown in (repr(key), str(key), f"{key}", f"{key!r}", format(key, ""), repr([key]), repr({"k": key})):
        assert VALUE_KEY not in shown
        assert VALUE_KEY[:-4] not in shown
    assert repr(key) == str(key) == f"ApiKey(****{VALUE_KEY[-4:]})"
    assert repr(ApiKey("short-key")) == "ApiKey(****)"


def test_api_key_strips_compares_and_refuses_pickling() -> None:
    assert ApiKey(f"  {VALUE_KEY}\n").value == VALUE_KEY
    assert ApiKey(VALUE_KEY) == ApiKey(VALUE_KEY + "\n")
    assert ApiKey(VALUE_KEY) != ApiKey(FILE_KEY)
    assert len({ApiKey(VALUE_KEY), ApiKey(VALUE_KEY)}) == 1
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(ApiKey(VALUE_KEY))
    key = ApiKey(VALUE_KEY)
    assert copy.copy(key) is key and copy.deepcopy({"k": key})["k"] is key
    with pytest.raises(InvalidArgumentError):
        ApiKey("   ")


def test_names_follow_the_seed() -> None:
    assert secret_id("R") == "hopsworks/role/R"
    assert parameter_name("R") == "/hopsworks/role/R/type/api-key"
    assert secret_id("R", "team/fs/") == "team/fs/R"
    assert parameter_name("R", "/team/fs/") == "/team/fs/R/type/api-key"


# ------------------------------------------------------------------ value, file, env


def test_value_comes_first(tmp_path: Path) -> None:
    key = obtain(host=HOST, api_key_value=VALUE_KEY,
                         api_key_file=str(tmp_path / "missing"), secrets_store="secretsmanager")
    assert key.value == VALUE_KEY and key.source == "api_key_value"


def test_empty_value_is_refused() -> None:
    raises(InvalidArgumentError, lambda: obtain(host=HOST, api_key_value="  "), "api_key_value")


def test_file_beats_the_secrets_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "api.key"
    path.write_text(f"\n  {FILE_KEY}  \n")
    monkeypatch.setenv("CLOUDSDK_API_KEY", ENV_KEY)
    key = obtain(host=HOST, api_key_file=str(path), secrets_store="env")
    assert key.value == FILE_KEY
    assert str(path) in key.source


def test_file_with_home_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "fs.key").write_text(FILE_KEY)
    assert obtain(host=HOST, api_key_file="~/fs.key").value == FILE_KEY


def test_missing_and_empty_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.key"
    raises(SecretNotFoundError, lambda: obtain(host=HOST, api_key_file=str(missing)),
           str(missing), HOST)
    empty = tmp_path / "empty.key"
    empty.write_text(" \n")
    raises(SecretNotFoundError, lambda: obtain(host=HOST, api_key_file=str(empty)),
           str(empty), "empty")
    raises(SecretNotFoundError, lambda: obtain(host=HOST, api_key_file=str(tmp_path)),
           str(tmp_path))


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "locked.key"
    path.write_text(FILE_KEY)

    def denied(self: Path, *args: Any, **kwargs: Any) -> str:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", denied)  # chmod 0 does not stop root
    raises(SecretAccessDeniedError, lambda: obtain(host=HOST, api_key_file=str(path)),
           str(path), "permission denied")


def test_local_store_is_the_seed_alias_for_a_file(tmp_path: Path) -> None:
    path = tmp_path / "api.key"
    path.write_text(FILE_KEY)
    assert obtain(host=HOST, secrets_store="local", api_key_file=str(path)).value == FILE_KEY
    raises(InvalidArgumentError, lambda: obtain(host=HOST, secrets_store="local"),
           "api_key_file")


def test_env_store_reads_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDSDK_API_KEY", ENV_KEY)
    key = obtain(host=HOST, secrets_store="env")
    assert key.value == ENV_KEY and key.source == "env:CLOUDSDK_API_KEY"
    assert os.environ["CLOUDSDK_API_KEY"] == ENV_KEY  # read, not consumed or rewritten


def test_env_store_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOUDSDK_API_KEY", raising=False)
    raises(SecretNotFoundError, lambda: obtain(host=HOST, secrets_store="env"),
           "CLOUDSDK_API_KEY", HOST)


def test_env_variable_is_not_used_unless_asked(aws_env: MotoServer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDSDK_API_KEY", ENV_KEY)
    session = assumed_role_session(ROLE)
    raises(SecretNotFoundError, lambda: obtain(host=HOST, session=session), ROLE)


def test_unknown_store_lists_the_choices() -> None:
    exc = raises(InvalidArgumentError,
                 lambda: obtain(host=HOST, secrets_store="vault", api_key_value=VALUE_KEY),
                 "'vault'", "'parameterstore'", "'secretsmanager'", "'env'")
    assert isinstance(exc, ValueError)


@pytest.mark.parametrize("role", ["", "a/b", "../x", "r" * 65, "with space"])
def test_invalid_role_names(role: str) -> None:
    raises(InvalidArgumentError, lambda: obtain(host=HOST, role=role), "role")


# -------------------------------------------------------------------- role from ARN


@pytest.mark.parametrize(
    ("arn", "role"),
    [
        ("arn:aws:sts::123456789012:assumed-role/SageMakerRole/SageMaker", "SageMakerRole"),
        ("arn:aws:sts::123456789012:assumed-role/db-cluster/i-0abc", "db-cluster"),
        ("arn:aws-cn:sts::123456789012:assumed-role/R+=,.@-_/s", "R+=,.@-_"),
        ("arn:aws:iam::123456789012:role/service-role/sagemaker/NotebookRole", "NotebookRole"),
        ("arn:aws:iam::123456789012:role/PlainRole", "PlainRole"),
    ],
)
def test_role_from_arn(arn: str, role: str) -> None:
    assert role_from_arn(arn) == role


@pytest.mark.parametrize(
    ("arn", "what"),
    [
        ("arn:aws:iam::123456789012:user/alice", "IAM user"),
        ("arn:aws:iam::123456789012:user/dev/alice", "IAM user"),
        ("arn:aws:iam::123456789012:root", "root account"),
        ("arn:aws:sts::123456789012:federated-user/bob", "not a role"),
        ("garbage", "not a role"),
    ],
)
def test_non_role_arns_say_what_to_do(arn: str, what: str) -> None:
    raises(CredentialsError, lambda: role_from_arn(arn), arn, what, "role=", "api_key_file")


# ----------------------------------------------------------------- Parameter Store


def test_parameter_store_with_an_assumed_role(aws_env: MotoServer) -> None:
    session = assumed_role_session(ROLE)
    store_keys()
    key = obtain(host=HOST, session=session)
    assert key.value == SSM_KEY
    assert key.source == f"parameterstore:/hopsworks/role/{ROLE}/type/api-key ({REGION})"


def test_credentials_from_the_environment_each_call(aws_env: MotoServer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """No session given: each call makes its own, so changed credentials are picked up."""
    store_keys("first")
    store_keys("second")
    admin_session().client("ssm").put_parameter(
        Name="/hopsworks/role/second/type/api-key", Value=SM_KEY, Type="SecureString", Overwrite=True
    )
    for role, expected in (("first", SSM_KEY), ("second", SM_KEY)):
        creds = assumed_role_session(role).get_credentials()
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds.access_key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds.secret_key)
        monkeypatch.setenv("AWS_SESSION_TOKEN", creds.token)
        assert obtain(host=HOST).value == expected


def test_role_with_a_path(aws_env: MotoServer) -> None:
    session = assumed_role_session(ROLE, path="/service-role/sagemaker/")
    store_keys()
    assert session.client("sts").get_caller_identity()["Arn"].endswith(f"assumed-role/{ROLE}/notebook")
    assert obtain(host=HOST, session=session).value == SSM_KEY


def test_role_argument_skips_sts(aws_env: MotoServer) -> None:
    """With moto's default credentials (an IAM user), role= names the secret."""
    store_keys("OtherRole")
    assert obtain(host=HOST, role="OtherRole").value == SSM_KEY
    assert obtain(host=HOST, role="OtherRole", secrets_store="secretsmanager").value == SM_KEY


def test_iam_user_identity(aws_env: MotoServer) -> None:
    iam = admin_session().client("iam")
    iam.create_user(UserName="alice")
    access = iam.create_access_key(UserName="alice")["AccessKey"]
    session = boto3.Session(aws_access_key_id=access["AccessKeyId"],
                            aws_secret_access_key=access["SecretAccessKey"], region_name=REGION)
    raises(CredentialsError, lambda: obtain(host=HOST, session=session),
           "user/alice", "IAM user", "role=", "api_key_file")


def test_custom_secret_prefix(aws_env: MotoServer) -> None:
    session = assumed_role_session(ROLE)
    store_keys(prefix="teams/fraud/")
    assert obtain(host=HOST, session=session, secret_prefix="teams/fraud/").value == SSM_KEY
    assert obtain(host=HOST, session=session, secret_prefix="teams/fraud/",
                          secrets_store="secretsmanager").value == SM_KEY
    # The default names do not exist.
    raises(SecretNotFoundError, lambda: obtain(host=HOST, session=session),
           f"/hopsworks/role/{ROLE}/type/api-key")


def test_missing_parameter(aws_env: MotoServer) -> None:
    session = assumed_role_session(ROLE)
    exc = raises(SecretNotFoundError, lambda: obtain(host=HOST, session=session),
                 f"/hopsworks/role/{ROLE}/type/api-key", ROLE, REGION)
    assert exc.context["secret_id"] == f"/hopsworks/role/{ROLE}/type/api-key"
    assert exc.context["role"] == ROLE and exc.context["region"] == REGION


def test_plain_string_parameter_works_too(aws_env: MotoServer) -> None:
    admin_session().client("ssm").put_parameter(
        Name=f"/hopsworks/role/{ROLE}/type/api-key", Value=SSM_KEY, Type="String"
    )
    assert obtain(host=HOST, role=ROLE).value == SSM_KEY


# ----------------------------------------------------------------- Secrets Manager


@pytest.mark.parametrize("store", ["secretsmanager", "parameterstore"])
def test_botocore_debug_logs_hide_the_secret(aws_env: MotoServer, caplog: pytest.LogCaptureFixture,
                                             store: str) -> None:
    """botocore logs response bodies at DEBUG; those of the secret reads are dropped."""
    store_keys()
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    obtain(host=HOST, role=ROLE, secrets_store=store)
    messages = [r.getMessage() for r in caplog.get_records("call")]
    assert any(m.startswith("Response headers") for m in messages)  # botocore did log
    assert not [m for m in messages if SM_KEY in m or SSM_KEY in m]
    # Other calls' bodies are still logged (the filter is narrow).
    admin_session().client("sts").get_caller_identity()
    assert any(m.startswith("Response body") for m in (r.getMessage() for r in caplog.get_records("call")))


def test_secrets_manager_with_an_assumed_role(aws_env: MotoServer) -> None:
    session = assumed_role_session(ROLE)
    store_keys()
    key = obtain(host=HOST, session=session, secrets_store="secretsmanager")
    assert key.value == SM_KEY
    assert key.source == f"secretsmanager:hopsworks/role/{ROLE} ({REGION})"


def test_missing_secret(aws_env: MotoServer) -> None:
    session = assumed_role_session(ROLE)
    raises(SecretNotFoundError,
           lambda: obtain(host=HOST, session=session, secrets_store="secretsmanager"),
           f"hopsworks/role/{ROLE}", ROLE, REGION)


@pytest.mark.parametrize(
    ("secret", "words"),
    [
        (json.dumps({"apikey": SM_KEY}), ["'api-key'", "apikey"]),
        (json.dumps({"api-key": ""}), ["'api-key'"]),
        (json.dumps({"api-key": 12345}), ["'api-key'"]),
        (SM_KEY, ["not a JSON object"]),  # the raw key stored as plain text: never echoed
        (json.dumps([SM_KEY]), ["not a JSON object"]),
        ('{"api-key": "' + SM_KEY, ["not a JSON object"]),  # broken JSON around the key
    ],
)
def test_secret_without_the_key(aws_env: MotoServer, secret: str, words: list[str]) -> None:
    admin_session().client("secretsmanager").create_secret(
        Name=f"hopsworks/role/{ROLE}", SecretString=secret
    )
    session = assumed_role_session(ROLE)
    raises(SecretNotFoundError,
           lambda: obtain(host=HOST, session=session, secrets_store="secretsmanager"),
           f"hopsworks/role/{ROLE}", ROLE, REGION, *words)


def test_binary_secret(aws_env: MotoServer) -> None:
    admin_session().client("secretsmanager").create_secret(
        Name=f"hopsworks/role/{ROLE}", SecretBinary=SM_KEY.encode()
    )
    raises(SecretNotFoundError,
           lambda: obtain(host=HOST, role=ROLE, secrets_store="secretsmanager"),
           "binary", f"hopsworks/role/{ROLE}")


# ------------------------------------------------------------ access, region, errors


@pytest.mark.parametrize(("store", "name", "action"), [
    ("secretsmanager", f"hopsworks/role/{ROLE}", "secretsmanager:GetSecretValue"),
    ("parameterstore", f"/hopsworks/role/{ROLE}/type/api-key", "ssm:GetParameter"),
])
def test_access_denied(aws_env: MotoServer, store: str, name: str, action: str) -> None:
    """moto enforces IAM policies when asked: the role has no policy allowing the read."""
    session = assumed_role_session(ROLE)
    store_keys()
    with aws_env.iam_enforced():
        exc = raises(SecretAccessDeniedError,
                     lambda: obtain(host=HOST, session=session, secrets_store=store),
                     name, ROLE, REGION, action)
    assert exc.context["aws_error"] == "AccessDenied"


@pytest.mark.parametrize("store", ["secretsmanager", "parameterstore"])
def test_policy_allows_the_read(aws_env: MotoServer, store: str) -> None:
    session = assumed_role_session(ROLE, policy=ALLOW_READ)
    store_keys()
    with aws_env.iam_enforced():
        key = obtain(host=HOST, session=session, secrets_store=store)
    assert key.value == (SM_KEY if store == "secretsmanager" else SSM_KEY)


def test_rejected_credentials(aws_env: MotoServer) -> None:
    session = boto3.Session(aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
                            aws_secret_access_key="wrong", region_name=REGION)
    with aws_env.iam_enforced():
        exc = raises(CredentialsError, lambda: obtain(host=HOST, session=session, role=ROLE),
                     "rejected", "InvalidClientTokenId", ROLE)
    assert type(exc) is CredentialsError


@pytest.mark.parametrize("store", ["secretsmanager", "parameterstore"])
def test_wrong_region(aws_env: MotoServer, store: str) -> None:
    session = assumed_role_session(ROLE)
    store_keys()  # in us-east-1
    exc = raises(SecretNotFoundError,
                 lambda: obtain(host=HOST, session=session, secrets_store=store,
                                        region_name="eu-west-1"),
                 "eu-west-1", ROLE, "region_name=")
    assert exc.context["region"] == "eu-west-1"
    # The session's own region finds it.
    assert obtain(host=HOST, session=session, secrets_store=store).value in (SM_KEY, SSM_KEY)


def test_region_name_argument_builds_the_session(aws_env: MotoServer,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store_keys(region="eu-central-1")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert obtain(host=HOST, role=ROLE, region_name="eu-central-1").value == SSM_KEY


def test_no_region(aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    raises(CredentialsError, lambda: obtain(host=HOST), "region_name=", "AWS_DEFAULT_REGION")


def test_no_credentials(aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    raises(CredentialsError, lambda: obtain(host=HOST), "no AWS credentials", "api_key_file")
    raises(CredentialsError, lambda: obtain(host=HOST, role=ROLE, secrets_store="secretsmanager"),
           "no AWS credentials", f"hopsworks/role/{ROLE}", ROLE, REGION)


def test_unreachable_endpoint(aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard port: refused
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    raises(CredentialsError, lambda: obtain(host=HOST, role=ROLE),
           "cannot reach AWS", "AWS_ENDPOINT_URL", f"/hopsworks/role/{ROLE}/type/api-key", REGION)


def test_unknown_profile(aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    raises(CredentialsError, lambda: obtain(host=HOST, role=ROLE), "no-such-profile")


class _StubSession:
    """A stand-in for boto3.Session whose clients answer from a botocore Stubber."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.region_name = REGION

    def client(self, service: str, **kwargs: Any) -> Any:
        return self._client


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("ResourceNotFoundException", 400, SecretNotFoundError),
        ("AccessDeniedException", 400, SecretAccessDeniedError),
        ("DecryptionFailure", 400, SecretAccessDeniedError),
        ("KMS.AccessDeniedException", 400, SecretAccessDeniedError),
        ("ExpiredTokenException", 400, CredentialsError),
        ("UnrecognizedClientException", 400, CredentialsError),
        ("SomethingNew", 403, SecretAccessDeniedError),
        ("InternalServiceError", 500, CredentialsError),
        ("ThrottlingException", 400, CredentialsError),
    ],
)
def test_aws_error_codes_are_translated(code: str, status: int, kind: type[CloudSDKError]) -> None:
    client = boto3.Session(aws_access_key_id="x", aws_secret_access_key="y",
                           region_name=REGION).client("secretsmanager")
    with Stubber(client) as stub:
        stub.add_client_error("get_secret_value", service_error_code=code,
                              service_message="denied or missing", http_status_code=status)
        exc = raises(kind, lambda: obtain(host=HOST, role=ROLE, secrets_store="secretsmanager",
                                          session=_StubSession(client)),
                     f"hopsworks/role/{ROLE}", ROLE, REGION)
    assert type(exc) is kind
    assert exc.context["aws_error"] == code
    assert exc.__cause__ is not None  # chained: the botocore error stays inspectable


def test_docs_policies_are_json() -> None:
    """The IAM policy examples in docs/connecting.md are valid JSON with the seed's names."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "connecting.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```json\n")[1:]]
    policies = [json.loads(b) for b in blocks]
    resources = json.dumps(policies)
    assert len(policies) >= 2
    assert "secretsmanager:GetSecretValue" in resources and "ssm:GetParameter" in resources
    assert "secret:hopsworks/role/" in resources
    assert "parameter/hopsworks/role/" in resources and "/type/api-key" in resources
