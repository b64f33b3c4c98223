"""S3 access for training datasets: a storage connector's settings → pyarrow and boto3 clients.

A connector is a plain dict (what the store returns for an S3 storage connector)::

    {"type": "s3", "name": "my_s3", "bucket": "ml-data", "path": "datasets",
     "region": "eu-west-1", "endpoint_url": None,
     "access_key": None, "secret_key": None, "session_token": None,
     "server_side_encryption": "AES256" | "aws:kms" | None, "kms_key_id": None}

Without an access key pair the default AWS credential chain is used (an instance or
notebook role, ``~/.aws``, the environment), as boto3 and pyarrow do by themselves.
Light: pyarrow and boto3 only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import pyarrow.fs as pafs

from cloudsdk.errors import InvalidArgumentError, PermissionDeniedError, StorageError

SSE_VALUES = ("AES256", "aws:kms")


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key/prefix`` → ``("bucket", "key/prefix")``."""
    parsed = urlparse(url)
    if parsed.scheme not in ("s3", "s3a") or not parsed.netloc:
        raise InvalidArgumentError(f"not an s3:// URL: {url!r}")
    return parsed.netloc, parsed.path.strip("/")


def _endpoint(conn: Mapping[str, Any]) -> tuple[str | None, str]:
    url = conn.get("endpoint_url")
    if not url:
        return None, "https"
    parsed = urlparse(str(url))
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidArgumentError(f"endpoint_url must be http(s)://host[:port], got {url!r}")
    return parsed.netloc, parsed.scheme


def filesystem(conn: Mapping[str, Any]) -> pafs.S3FileSystem:
    """A pyarrow S3 filesystem for the connector (pyarrow ignores AWS_ENDPOINT_URL, so the
    endpoint is passed explicitly)."""
    endpoint, scheme = _endpoint(conn)
    options: dict[str, Any] = {"scheme": scheme}
    if endpoint:
        options["endpoint_override"] = endpoint
    if conn.get("region"):
        options["region"] = conn["region"]
    if conn.get("access_key") and conn.get("secret_key"):
        options["access_key"] = conn["access_key"]
        options["secret_key"] = conn["secret_key"]
        if conn.get("session_token"):
            options["session_token"] = conn["session_token"]
    return pafs.S3FileSystem(**options)


def client(conn: Mapping[str, Any]) -> Any:
    """A boto3 S3 client for the connector (its own session: no shared global state)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=conn.get("access_key") or None,
        aws_secret_access_key=conn.get("secret_key") or None,
        aws_session_token=conn.get("session_token") or None,
        region_name=conn.get("region") or None,
    )
    return session.client("s3", endpoint_url=conn.get("endpoint_url") or None,
                          config=Config(retries={"max_attempts": 3, "mode": "standard"}))


def extra_args(conn: Mapping[str, Any]) -> dict[str, str]:
    """boto3 ExtraArgs for uploads: server-side encryption as the connector asks."""
    sse = conn.get("server_side_encryption")
    if not sse:
        return {}
    out = {"ServerSideEncryption": str(sse)}
    if sse == "aws:kms" and conn.get("kms_key_id"):
        out["SSEKMSKeyId"] = str(conn["kms_key_id"])
    return out


def dataset_url(conn: Mapping[str, Any], dirname: str) -> str:
    """Where a dataset directory lives under the connector: ``s3://bucket/path/dirname``."""
    prefix = str(conn.get("path") or "").strip("/")
    key = f"{prefix}/{dirname}" if prefix else dirname
    return f"s3://{conn['bucket']}/{key}"


def translate(exc: BaseException, conn: Mapping[str, Any], action: str) -> Exception:
    """A boto3/botocore/pyarrow failure → a typed cloudsdk error that names the bucket and
    connector (never a secret)."""
    where = f"bucket {conn.get('bucket')!r} (storage connector {conn.get('name')!r})"
    code = ""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
    text = str(exc)
    missing = code == "NoSuchBucket" or (code in ("404", "NotFound") and "HeadBucket" in text)
    if missing or "NoSuchBucket" in text or "bucket does not exist" in text.lower():
        return StorageError(f"cannot {action}: {where} does not exist; create it or fix the connector")
    if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled") \
            or "AccessDenied" in text or "Access Denied" in text or "403" in text.split(":")[0]:
        return PermissionDeniedError(
            f"cannot {action}: access to {where} was denied; check the connector's credentials "
            "or the role's S3 policy")
    if "Unable to locate credentials" in text or "NoCredentialsError" in type(exc).__name__:
        return PermissionDeniedError(
            f"cannot {action}: no AWS credentials for {where}; give the connector an access key "
            "pair or run where the default credential chain finds a role")
    return StorageError(f"cannot {action} in {where}: {type(exc).__name__}: {exc}")


def delete_prefix(conn: Mapping[str, Any], url: str) -> int:
    """Delete every object under ``url`` (``s3://bucket/prefix``, as a directory); returns the
    number deleted. boto3, not pyarrow: pyarrow leaves a directory marker behind."""
    bucket, prefix = split_url(url)
    s3 = client(conn)
    deleted = 0
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/"):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
                deleted += len(keys)
    except Exception as exc:
        raise translate(exc, conn, f"delete {url}") from exc
    return deleted
