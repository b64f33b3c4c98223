"""API keys for ``connect(host, ...)``: from a value, a file, AWS Secrets Manager,
AWS Systems Manager Parameter Store or the ``CLOUDSDK_API_KEY`` environment variable.

The lookup order is fixed and documented (docs/connecting.md):

1. ``api_key_value``,
2. ``api_key_file`` (its content, whitespace stripped),
3. ``secrets_store``:

   * ``"parameterstore"`` (default): the SecureString parameter
     ``/<secret_prefix><ROLE>/type/api-key``, read with decryption;
   * ``"secretsmanager"``: the secret ``<secret_prefix><ROLE>``, a JSON object whose
     key ``"api-key"`` holds the API key;
   * ``"env"``: the environment variable ``CLOUDSDK_API_KEY`` (read, never written).

``secret_prefix`` defaults to ``"hopsworks/role/"`` so that the names, and the IAM policies
that grant access to them, are the ones the Hopsworks documentation uses. ``ROLE`` is the
``role=`` argument or, without it, the IAM role of the caller as STS GetCallerIdentity
reports it.

Every botocore error is translated into a :class:`~cloudsdk.errors.CredentialsError`
(or its subclasses :class:`~cloudsdk.errors.SecretNotFoundError` and
:class:`~cloudsdk.errors.SecretAccessDeniedError`) whose message names the secret or
parameter, the role and the region — never the key.
"""

from __future__ import annotations

import contextlib
import contextvars
import hmac
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from cloudsdk.errors import (
    CredentialsError,
    InvalidArgumentError,
    SecretAccessDeniedError,
    SecretNotFoundError,
)

if TYPE_CHECKING:
    import boto3

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_SECRET_PREFIX",
    "SECRETS_STORES",
    "ApiKey",
    "obtain_api_key",
    "parameter_name",
    "role_from_arn",
    "secret_id",
]

log = logging.getLogger(__name__)

API_KEY_ENV = "CLOUDSDK_API_KEY"
DEFAULT_SECRET_PREFIX = "hopsworks/role/"
SECRETS_STORES = ("parameterstore", "secretsmanager", "env")
# The Hopsworks cloud SDK's name for "the key is in api_key_file": accepted as an alias.
_LOCAL_STORE = "local"
_JSON_KEY = "api-key"

# IAM role names: 1-64 of letters, digits and +=,.@_-
_ROLE_RE = re.compile(r"^[\w+=,.@-]{1,64}$")

_NOT_FOUND_CODES = frozenset(
    {"ResourceNotFoundException", "ParameterNotFound", "ParameterVersionNotFound", "NoSuchEntity"}
)
_ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "KMSAccessDeniedException",
        "KMS.AccessDeniedException",
        "DecryptionFailure",
        "DecryptionFailureException",
        "InvalidKeyId",
        "KMS.DisabledException",
        "UnauthorizedOperation",
    }
)
_BAD_CREDENTIALS_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "AuthFailure",
        "InvalidAccessKeyId",
    }
)
_HINT = "or pass api_key_file= / api_key_value= instead (see docs/connecting.md)"

# botocore logs every response body at DEBUG level ("Response body: ..."), which for
# GetSecretValue / GetParameter is the API key. While cloudsdk reads a secret, a filter on
# botocore's parser logger drops those records (and nothing else).
_reading_secret: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "cloudsdk_reading_secret", default=False
)


class _DropSecretResponseBodies(logging.Filter):
    """Drops botocore's "Response body" debug records of cloudsdk's secret reads."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_reading_secret.get() and str(record.msg).startswith("Response body"))


@contextlib.contextmanager
def _secret_read() -> Iterator[None]:
    logger = logging.getLogger("botocore.parsers")
    if not any(isinstance(f, _DropSecretResponseBodies) for f in logger.filters):
        logger.addFilter(_DropSecretResponseBodies())
    token = _reading_secret.set(True)
    try:
        yield
    finally:
        _reading_secret.reset(token)


class ApiKey:
    """A cloudsdk API key: the secret itself plus where it came from.

    ``str()`` and ``repr()`` mask the key (``ApiKey(****abcd)``: at most the last four
    characters, and none of a key shorter than 12 characters); read the secret with
    :attr:`value`, e.g. to build the ``Authorization: ApiKey <key>`` header.

    Example:
        >>> key = ApiKey("0123456789abcdef-secret")
        >>> key
        ApiKey(****cret)
        >>> key.value.endswith("secret")
        True
    """

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str = "value") -> None:
        if not isinstance(value, str):
            raise InvalidArgumentError(f"an API key is a string, got {type(value).__name__}")
        value = value.strip()
        if not value:
            raise InvalidArgumentError(f"the API key from {source} is empty", source=source)
        self._value = value
        #: Where the key came from, e.g. ``"parameterstore:/hopsworks/role/r/type/api-key"``.
        self.source = source

    @property
    def value(self) -> str:
        """The secret API key. Never log it."""
        return self._value

    def masked(self) -> str:
        """The key with all but (at most) its last four characters hidden."""
        tail = self._value[-4:] if len(self._value) >= 12 else ""
        return f"****{tail}"

    def __repr__(self) -> str:
        return f"ApiKey({self.masked()})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(repr(self), spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ApiKey):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("ApiKey", self._value))

    def __copy__(self) -> ApiKey:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> ApiKey:
        return self

    def __reduce__(self) -> NoReturn:
        raise TypeError("an ApiKey cannot be pickled (it would write the secret out)")


def secret_id(role: str, secret_prefix: str = DEFAULT_SECRET_PREFIX) -> str:
    """The Secrets Manager secret id for ``role``: ``"hopsworks/role/<ROLE>"`` by default."""
    return f"{secret_prefix}{role}"


def parameter_name(role: str, secret_prefix: str = DEFAULT_SECRET_PREFIX) -> str:
    """The Parameter Store name for ``role``: ``"/hopsworks/role/<ROLE>/type/api-key"`` by default."""
    return f"/{secret_prefix.lstrip('/')}{role}/type/api-key"


def role_from_arn(arn: str) -> str:
    """The IAM role name in an STS caller ARN.

    ``arn:aws:sts::ACCT:assumed-role/<ROLE>/<session>`` and
    ``arn:aws:iam::ACCT:role/path/to/<ROLE>`` give ``<ROLE>``.

    Raises:
        CredentialsError: an IAM user, the root account or any other non-role identity.

    Example:
        >>> role_from_arn("arn:aws:sts::123456789012:assumed-role/SageMakerRole/nb-1")
        'SageMakerRole'
    """
    parts = arn.split(":", 5)
    resource = parts[5] if len(parts) == 6 and parts[0] == "arn" else ""
    kind, _, rest = resource.partition("/")
    segments = [s for s in rest.split("/") if s]
    if kind == "assumed-role" and len(segments) >= 2:
        return segments[0]
    if kind == "role" and segments:
        return segments[-1]
    what = "an IAM user" if kind == "user" else "the root account" if resource == "root" else "not a role"
    raise CredentialsError(
        f"the AWS identity {arn} is {what}, so no role names the API key's secret: "
        f"pass role='<ROLE>' (the role whose secret holds the key), {_HINT}",
        arn=arn,
    )


def obtain_api_key(
    *,
    host: str,
    secrets_store: str = "parameterstore",
    region_name: str | None = None,
    api_key_file: str | None = None,
    api_key_value: str | None = None,
    role: str | None = None,
    secret_prefix: str = DEFAULT_SECRET_PREFIX,
    session: boto3.Session | None = None,
) -> ApiKey:
    """Find the API key for connecting to ``host``.

    Order: ``api_key_value``, then ``api_key_file``, then ``secrets_store``
    (``"parameterstore"``, ``"secretsmanager"`` or ``"env"``).

    Args:
        host: the server the key is for (named in error messages).
        secrets_store: where to look when neither a value nor a file is given.
        region_name: the AWS region of the secret / parameter; default: the session's.
        api_key_file: a file holding the key (surrounding whitespace is ignored).
        api_key_value: the key itself.
        role: the IAM role whose secret holds the key; default: the caller's role (STS).
        secret_prefix: the names' prefix, ``"hopsworks/role/"`` by default.
        session: the boto3 session to use; default: a new ``boto3.Session(region_name=...)``.

    Returns:
        The :class:`ApiKey`.

    Raises:
        InvalidArgumentError: an unknown ``secrets_store``, a bad ``role`` or an empty value.
        SecretNotFoundError: no such file, secret, parameter or variable, or no key in it.
        SecretAccessDeniedError: the AWS identity may not read the secret or parameter.
        CredentialsError: no usable AWS credentials or region, or a non-role identity.

    Example:
        >>> obtain_api_key(host="fs.example.com", api_key_value="0123456789abcdef")
        ApiKey(****cdef)
    """
    store = secrets_store.lower() if isinstance(secrets_store, str) else secrets_store
    if store not in (*SECRETS_STORES, _LOCAL_STORE):
        raise InvalidArgumentError(
            f"unknown secrets_store {secrets_store!r}: use one of "
            + ", ".join(repr(s) for s in SECRETS_STORES)
            + " (or pass api_key_file= / api_key_value=)",
            secrets_store=secrets_store,
        )
    if role is not None and not (isinstance(role, str) and _ROLE_RE.match(role)):
        raise InvalidArgumentError(
            f"invalid role {role!r}: an IAM role name has 1-64 letters, digits and +=,.@_-",
            role=role,
        )
    if not isinstance(secret_prefix, str):
        raise InvalidArgumentError("secret_prefix must be a string such as 'hopsworks/role/'")

    if api_key_value is not None:
        if not isinstance(api_key_value, str) or not api_key_value.strip():
            raise InvalidArgumentError("api_key_value is empty; pass the API key or leave it out")
        return ApiKey(api_key_value, source="api_key_value")
    if api_key_file is not None:
        return _read_key_file(api_key_file, host)
    if store == _LOCAL_STORE:
        raise InvalidArgumentError(
            "secrets_store='local' reads the key from api_key_file=, which is missing; "
            "pass api_key_file= or use 'parameterstore', 'secretsmanager' or 'env'"
        )
    if store == "env":
        return _read_env(host)
    return _read_aws(store, host=host, region_name=region_name, role=role,
                     secret_prefix=secret_prefix, session=session)


def _read_key_file(api_key_file: str, host: str) -> ApiKey:
    path = Path(os.fspath(api_key_file)).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SecretNotFoundError(
            f"the API key file {str(path)!r} does not exist (connecting to {host})",
            path=str(path), host=host,
        ) from None
    except PermissionError:
        raise SecretAccessDeniedError(
            f"the API key file {str(path)!r} cannot be read: permission denied (connecting to {host})",
            path=str(path), host=host,
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a text file"
        raise SecretNotFoundError(
            f"the API key file {str(path)!r} cannot be read: {reason} (connecting to {host})",
            path=str(path), host=host,
        ) from None
    if not text.strip():
        raise SecretNotFoundError(
            f"the API key file {str(path)!r} is empty (connecting to {host})",
            path=str(path), host=host,
        )
    return ApiKey(text, source=f"api_key_file:{path}")


def _read_env(host: str) -> ApiKey:
    value = os.environ.get(API_KEY_ENV, "")
    if not value.strip():
        raise SecretNotFoundError(
            f"secrets_store='env' but the environment variable {API_KEY_ENV} is not set "
            f"or empty (connecting to {host})",
            variable=API_KEY_ENV, host=host,
        )
    return ApiKey(value, source=f"env:{API_KEY_ENV}")


# ----------------------------------------------------------------------------- AWS


def _read_aws(
    store: str,
    *,
    host: str,
    region_name: str | None,
    role: str | None,
    secret_prefix: str,
    session: boto3.Session | None,
) -> ApiKey:
    import boto3
    from botocore.config import Config

    if session is None:
        try:
            session = boto3.Session(region_name=region_name)
        except Exception as exc:  # botocore: a broken profile or config file
            _raise_botocore(exc, what="an AWS session", role=role, region=region_name, host=host)
    region = region_name or session.region_name
    service_name = "Secrets Manager" if store == "secretsmanager" else "Parameter Store"
    if not region:
        raise CredentialsError(
            f"no AWS region for reading the API key from {service_name}: pass region_name= "
            f"(the region of the secret) or set AWS_DEFAULT_REGION, {_HINT}",
            host=host, role=role,
        )
    config = Config(connect_timeout=10, read_timeout=30)

    if role is None:
        role = _caller_role(session, region, config, host=host)

    if store == "secretsmanager":
        name = secret_id(role, secret_prefix)
        where = f"Secrets Manager secret {name!r} (role {role!r}, region {region!r})"
        try:
            client = session.client("secretsmanager", region_name=region, config=config)
            with _secret_read():
                response = client.get_secret_value(SecretId=name)
        except Exception as exc:
            _raise_botocore(exc, what=where, role=role, region=region, host=host, secret_id=name,
                            action="secretsmanager:GetSecretValue on the secret's ARN")
        return ApiKey(_key_from_secret(response, where, name=name, role=role, region=region, host=host),
                      source=f"secretsmanager:{name} ({region})")

    name = parameter_name(role, secret_prefix)
    where = f"Parameter Store parameter {name!r} (role {role!r}, region {region!r})"
    try:
        client = session.client("ssm", region_name=region, config=config)
        with _secret_read():
            response = client.get_parameter(Name=name, WithDecryption=True)
    except Exception as exc:
        _raise_botocore(exc, what=where, role=role, region=region, host=host, secret_id=name,
                        action="ssm:GetParameter on the parameter's ARN (and kms:Decrypt on its key)")
    value = (response.get("Parameter") or {}).get("Value")
    if not isinstance(value, str) or not value.strip():
        raise SecretNotFoundError(f"the {where} is empty", secret_id=name, role=role,
                                  region=region, host=host)
    return ApiKey(value, source=f"parameterstore:{name} ({region})")


def _caller_role(session: boto3.Session, region: str, config: Any, *, host: str) -> str:
    """The IAM role name of the session's identity (STS GetCallerIdentity)."""
    try:
        arn = session.client("sts", region_name=region, config=config).get_caller_identity()["Arn"]
    except Exception as exc:
        _raise_botocore(exc, what="AWS identity (STS GetCallerIdentity)", role=None,
                        region=region, host=host, action="pass role= to skip this call")
    log.debug("AWS caller identity %s", arn)
    return role_from_arn(arn)


def _key_from_secret(response: dict[str, Any], where: str, **context: Any) -> str:
    """The ``"api-key"`` of a GetSecretValue response. The message never quotes the secret."""
    text = response.get("SecretString")
    if text is None:
        raise SecretNotFoundError(
            f"the {where} holds binary data; store a JSON object "
            f'{{"{_JSON_KEY}": "<key>"}} as its secret string', **context,
        )
    parsed: object = None
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None  # raised below, outside the handler: no chained error carries the text
    if not isinstance(parsed, dict):
        raise SecretNotFoundError(
            f"the {where} is not a JSON object; store {{\"{_JSON_KEY}\": \"<key>\"}} "
            "(Secrets Manager: 'Other type of secret', key 'api-key')", **context,
        )
    value = parsed.get(_JSON_KEY)
    if not isinstance(value, str) or not value.strip():
        keys = sorted(str(k) for k in parsed)
        raise SecretNotFoundError(
            f"the {where} has no non-empty string key {_JSON_KEY!r} (its keys: {keys})", **context,
        )
    return value


def _raise_botocore(
    exc: Exception,
    *,
    what: str,
    role: str | None,
    region: str | None,
    host: str,
    secret_id: str | None = None,
    action: str | None = None,
) -> NoReturn:
    """Translate a boto3/botocore error into a CredentialsError naming what was read."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    context: dict[str, Any] = {"role": role, "region": region, "host": host}
    if secret_id is not None:
        context["secret_id"] = secret_id
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = _error_code(error)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        context["aws_error"] = code
        if code in _NOT_FOUND_CODES:
            raise SecretNotFoundError(
                f"the {what} does not exist; create it in region {region!r}, or pass "
                f"region_name=, role= or secret_prefix= to look elsewhere, {_HINT}",
                **context,
            ) from exc
        if code in _BAD_CREDENTIALS_CODES:
            raise CredentialsError(
                f"AWS rejected the credentials while reading the {what} ({code}): "
                f"refresh or fix the AWS credentials, {_HINT}", **context,
            ) from exc
        if code in _ACCESS_DENIED_CODES or status == 403:
            grant = f"; grant {action}" if action else ""
            detail = _short(error.get("Message"))
            raise SecretAccessDeniedError(
                f"access denied reading the {what} ({code or status}"
                + (f": {detail}" if detail else "") + f"){grant}", **context
            ) from exc
        raise CredentialsError(
            f"AWS refused to read the {what}: {code or status} {_short(error.get('Message'))}",
            **context,
        ) from exc
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        raise CredentialsError(
            f"no AWS credentials found for reading the {what}: run where an IAM role is "
            f"attached (SageMaker, Databricks) or configure credentials, {_HINT}", **context,
        ) from exc
    if isinstance(exc, NoRegionError):
        raise CredentialsError(
            f"no AWS region for reading the {what}: pass region_name= or set "
            f"AWS_DEFAULT_REGION, {_HINT}", **context,
        ) from exc
    if isinstance(exc, EndpointConnectionError):
        raise CredentialsError(
            f"cannot reach AWS for reading the {what} ({exc}): check the network, "
            f"region_name= ({region!r}) and AWS_ENDPOINT_URL, {_HINT}", **context,
        ) from exc
    if isinstance(exc, BotoCoreError):
        raise CredentialsError(
            f"could not read the {what}: {type(exc).__name__}: {exc}", **context
        ) from exc
    raise exc


def _error_code(error: dict[str, Any]) -> str:
    """The AWS error code; some endpoints put an XML error body in the message instead."""
    code = str(error.get("Code", ""))
    if not code or code.isdigit():
        match = re.search(r"<Code>(.*?)</Code>", str(error.get("Message") or ""), re.S)
        if match:
            return match.group(1).strip()
    return code


def _short(message: object) -> str:
    """AWS's error message, shortened; empty for the XML bodies some endpoints send."""
    text = str(message or "").strip()
    if text.startswith("<"):
        match = re.search(r"<Message>(.*?)</Message>", text, re.S)
        text = match.group(1) if match else ""
    return text[:300]
