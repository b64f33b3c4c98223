"""Write a project's client certificates where this process and Spark executors find them.

``write_credentials`` puts the credentials that the server issues for (user, project)
into ``<cert_folder>/<host>/<project>/``:

=================  =================  ============================================
logical name       file               content
=================  =================  ============================================
``ca_chain``       ``ca_chain.pem``   the CA chain (PEM) that signs the server and client
``client_cert``    ``client.pem``     the client certificate (PEM)
``client_key``     ``client_key.pem`` its private key (PEM), mode 0600
``pkcs12``         ``keystore.p12``   certificate + key as PKCS#12, mode 0600
``keystore_jks``   ``keyStore.jks``   certificate + key as a Java KeyStore, mode 0600
``truststore_jks`` ``trustStore.jks`` the CA chain as a Java TrustStore, mode 0600
``password``       ``material_passwd``  the keystores' password, mode 0600
=================  =================  ============================================

``cert_folder`` may be

* a local directory;
* a FUSE-mounted bucket such as ``/dbfs/mnt/<mount>`` (``dbfs:/mnt/<mount>`` is read as
  ``/dbfs/mnt/<mount>``), so that every executor of a Databricks cluster sees the files;
* an ``s3://bucket/prefix`` URL: each file is one S3 object, uploaded with server-side
  encryption (``AES256``).

Local and mounted files are written to a temporary name in the same directory and moved
into place with :func:`os.replace`, so a concurrent reader sees the old file or the new
one, never half of one. FUSE mounts may not support renaming (or not atomically): when
the rename fails, the file is written in place instead — there a reader racing the write
may see a short file, which is the price of a filesystem without rename; re-reading
after the connect has returned always gives complete files. Modes are set where the
filesystem supports ``chmod`` and silently left alone where it does not (DBFS).
S3 puts are atomic per object.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from cloudsdk.errors import CertificateError, InvalidArgumentError

if TYPE_CHECKING:
    import boto3

__all__ = ["FILES", "CertificateFiles", "local_folder", "write_credentials"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Spec:
    field: str  # the key in the server's credentials dict
    filename: str
    secret: bool  # mode 0600
    binary: bool
    required: bool


#: logical name -> what it is made from and where it goes, in writing order.
FILES: dict[str, _Spec] = {
    "ca_chain": _Spec("ca_chain_pem", "ca_chain.pem", secret=False, binary=False, required=True),
    "client_cert": _Spec("certificate_pem", "client.pem", secret=False, binary=False, required=True),
    "client_key": _Spec("private_key_pem", "client_key.pem", secret=True, binary=False, required=True),
    "pkcs12": _Spec("pkcs12", "keystore.p12", secret=True, binary=True, required=False),
    "keystore_jks": _Spec("keystore_jks", "keyStore.jks", secret=True, binary=True, required=False),
    "truststore_jks": _Spec("truststore_jks", "trustStore.jks", secret=True, binary=True, required=False),
    "password": _Spec("password", "material_passwd", secret=True, binary=False, required=True),
}

_NO_FALLBACK_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EROFS") if hasattr(errno, name)
)

# Host names (and IPv4 addresses), and project names: one safe path component each.
_HOST_RE = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?$")
_PROJECT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass
class _S3Target:
    bucket: str
    keys: dict[str, str]  # logical name -> object key
    session: Any = field(repr=False)
    endpoint_url: str | None = None

    def client(self) -> Any:
        return self.session.client("s3", endpoint_url=self.endpoint_url)


@dataclass
class CertificateFiles:
    """What :func:`write_credentials` wrote: the directory and each file's path or URL.

    ``files`` maps the logical names (``"ca_chain"``, ``"client_cert"``, ``"client_key"``,
    ``"pkcs12"``, ``"keystore_jks"``, ``"truststore_jks"``, ``"password"``) to local paths
    or ``s3://`` URLs. The repr shows paths only, never the password.

    Example:
        >>> files = write_credentials(credentials, "/dbfs/mnt/certs", "fs.example.com", "demo")  # doctest: +SKIP
        >>> files.files["client_key"]  # doctest: +SKIP
        '/dbfs/mnt/certs/fs.example.com/demo/client_key.pem'
        >>> files.remove()  # doctest: +SKIP
    """

    directory: str
    files: dict[str, str]
    _s3: _S3Target | None = field(default=None, repr=False, compare=False)
    # sha256 of the password file written: each connection's credentials have their own
    # password, so when the file differs a later connection has rewritten the folder and
    # remove() leaves it alone (re-running a notebook's connect cell and closing the old
    # connection must never empty cert_folder).
    _token: str = field(default="", repr=False, compare=False)

    @property
    def on_s3(self) -> bool:
        """True when the files are S3 objects rather than local (or mounted) files."""
        return self._s3 is not None

    def remove(self) -> None:
        """Delete exactly the files that were written (and the directories they leave empty).

        Calling it again, or after the files are gone, does nothing.

        Raises:
            CertificateError: a file or object exists but cannot be deleted.
        """
        if self._s3 is not None:
            _remove_s3(self._s3, self.directory, self._token)
        else:
            _remove_local(self.directory, self.files, self._token)

    def __repr__(self) -> str:
        return f"CertificateFiles(directory={self.directory!r}, files={self.files!r})"


def write_credentials(
    credentials: Mapping[str, Any],
    cert_folder: str,
    host: str,
    project: str,
    *,
    session: boto3.Session | None = None,
    s3_endpoint_url: str | None = None,
) -> CertificateFiles:
    """Write a project's certificates and keystores to ``<cert_folder>/<host>/<project>/``.

    Writing again refreshes the files in place.

    Args:
        credentials: what the server's credentials endpoint returns: ``ca_chain_pem``,
            ``certificate_pem``, ``private_key_pem`` and ``password`` (str), and optionally
            ``pkcs12``, ``keystore_jks``, ``truststore_jks`` (bytes).
        cert_folder: a local directory, a mounted bucket (``/dbfs/mnt/<mount>``) or an
            ``s3://bucket/prefix`` URL.
        host: the server's host name (a directory level; no ``/`` or ``..``).
        project: the project name (a directory level).
        session: boto3 session for ``s3://`` folders; default: a new ``boto3.Session()``.
        s3_endpoint_url: S3 endpoint for ``s3://`` folders; default: boto3's (which
            honours ``AWS_ENDPOINT_URL``).

    Returns:
        The :class:`CertificateFiles` written.

    Raises:
        InvalidArgumentError: a host or project that is not one safe path component.
        CertificateError: missing or malformed credentials, or the files cannot be written.
    """
    _check_component(host, "host", _HOST_RE)
    _check_component(project, "project", _PROJECT_RE)
    if not isinstance(cert_folder, str | os.PathLike) or not os.fspath(cert_folder):
        raise InvalidArgumentError(f"cert_folder must be a directory or s3:// URL, got {cert_folder!r}")
    contents = _contents(credentials)
    folder = os.fspath(cert_folder)
    if folder.startswith("s3://"):
        return _write_s3(contents, folder, host, project, session, s3_endpoint_url)
    if re.match(r"^[a-z][a-z0-9+.-]*://", folder):
        raise InvalidArgumentError(
            f"cert_folder {folder!r}: use a local or mounted directory or an s3:// URL"
        )
    return _write_local(contents, local_folder(folder) / host / project)


def local_folder(cert_folder: str) -> Path:
    """The absolute local path of a folder; ``dbfs:/mnt/x`` becomes the FUSE path ``/dbfs/mnt/x``.

    Example:
        >>> str(local_folder("dbfs:/mnt/certs"))
        '/dbfs/mnt/certs'
    """
    if cert_folder.startswith("dbfs:/"):
        cert_folder = "/dbfs/" + cert_folder[len("dbfs:/"):].lstrip("/")
    return Path(cert_folder).expanduser().absolute()


def _check_component(value: object, what: str, pattern: re.Pattern[str]) -> None:
    if not isinstance(value, str) or not pattern.match(value) or ".." in value:
        raise InvalidArgumentError(
            f"invalid {what} {value!r} for the certificate folder: use letters, digits, "
            "'.', '-' and '_' only (no '/' or '..')",
            **{what: value},
        )


def _contents(credentials: Mapping[str, Any]) -> dict[str, bytes]:
    """Logical name -> bytes to write, checking the credentials' shape (never their values)."""
    if not isinstance(credentials, Mapping):
        raise CertificateError(f"credentials must be a mapping, got {type(credentials).__name__}")
    contents: dict[str, bytes] = {}
    for name, spec in FILES.items():
        value = credentials.get(spec.field)
        if value is None:
            if spec.required:
                raise CertificateError(
                    f"the server's credentials lack {spec.field!r} (needed for {spec.filename})",
                    field=spec.field,
                )
            continue
        if isinstance(value, bytes | bytearray | memoryview):
            data = bytes(value)
        elif isinstance(value, str) and not spec.binary:
            data = value.encode("utf-8")
        else:
            kind = "bytes" if spec.binary else "str or bytes"
            raise CertificateError(
                f"the server's credentials give {spec.field!r} as {type(value).__name__}, "
                f"expected {kind}",
                field=spec.field,
            )
        if not data:
            raise CertificateError(f"the server's credentials give an empty {spec.field!r}",
                                   field=spec.field)
        contents[name] = data
    return contents


# ------------------------------------------------------------------------- local files


def _write_local(contents: dict[str, bytes], directory: Path) -> CertificateFiles:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CertificateError(
            f"cannot create the certificate folder {str(directory)!r}: {exc.strerror or exc}",
            folder=str(directory),
        ) from exc
    files: dict[str, str] = {}
    for name, data in contents.items():
        spec = FILES[name]
        target = directory / spec.filename
        try:
            _replace_file(target, data, secret=spec.secret)
        except OSError as exc:
            raise CertificateError(
                f"cannot write {spec.filename} to the certificate folder {str(directory)!r}: "
                f"{exc.strerror or type(exc).__name__}",
                folder=str(directory), file=spec.filename,
            ) from exc
        files[name] = str(target)
    log.debug("wrote %d certificate files to %s", len(files), directory)
    return CertificateFiles(directory=str(directory), files=files, _token=_token_of(contents.get("password")) or "")


def _token_of(data: bytes | None) -> str | None:
    return hashlib.sha256(data).hexdigest() if data is not None else None


def _replace_file(target: Path, data: bytes, *, secret: bool) -> None:
    """Write ``data`` to ``target`` atomically (temp file + rename), else in place."""
    mode = 0o600 if secret else 0o644
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    try:
        _write_file(tmp, data, mode, exclusive=True)
        os.replace(tmp, target)
    except OSError as exc:
        # FUSE mounts (DBFS, s3fs, gcsfuse) may refuse the rename or the exclusive create.
        # A full or read-only filesystem would fail in place too, after truncating the old file.
        _discard(tmp)
        if exc.errno in _NO_FALLBACK_ERRNOS:
            raise
        log.debug("atomic write of %s failed (%s); writing in place", target, type(exc).__name__)
        _write_file(target, data, mode, exclusive=False)
    if secret:
        _chmod(target, 0o600)


def _write_file(path: Path, data: bytes, mode: int, *, exclusive: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        with contextlib.suppress(OSError):  # some FUSE filesystems do not implement fsync
            os.fsync(handle.fileno())


def _chmod(path: Path, mode: int) -> None:
    try:
        os.chmod(path, mode)
    except OSError:  # mounts without permissions (DBFS): nothing to tighten there
        log.debug("chmod %o not supported for %s", mode, path)


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _remove_local(directory: str, files: dict[str, str], token: str) -> None:
    try:
        with open(files["password"], "rb") as fh:
            current = _token_of(fh.read())
    except (KeyError, OSError):
        current = None
    if token and current is not None and current != token:
        log.debug("%s was rewritten by another connection; leaving it", directory)
        return
    for path in files.values():
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise CertificateError(
                f"cannot remove {os.path.basename(path)} from the certificate folder "
                f"{directory!r}: {exc.strerror or type(exc).__name__}",
                folder=directory,
            ) from exc
    # <cert_folder>/<host>/<project> and <cert_folder>/<host>, if nothing else is left there.
    project_dir = Path(directory)
    for folder in (project_dir, project_dir.parent):
        try:
            folder.rmdir()
        except OSError:
            break


# ---------------------------------------------------------------------------------- S3


def _write_s3(
    contents: dict[str, bytes],
    folder: str,
    host: str,
    project: str,
    session: boto3.Session | None,
    endpoint_url: str | None,
) -> CertificateFiles:
    bucket, _, prefix = folder[len("s3://"):].partition("/")
    if not bucket:
        raise InvalidArgumentError(f"cert_folder {folder!r} names no bucket: use s3://bucket/prefix")
    base = "/".join(part for part in (prefix.strip("/"), host, project) if part)
    directory = f"s3://{bucket}/{base}"
    target = _S3Target(bucket=bucket, keys={}, session=session, endpoint_url=endpoint_url)
    files: dict[str, str] = {}
    try:
        if target.session is None:
            import boto3

            target.session = boto3.Session()
        client = target.client()
        for name, data in contents.items():
            key = f"{base}/{FILES[name].filename}"
            client.put_object(Bucket=bucket, Key=key, Body=data, ServerSideEncryption="AES256")
            target.keys[name] = key
            files[name] = f"s3://{bucket}/{key}"
    except Exception as exc:
        _raise_s3(exc, f"cannot upload the certificates to {directory!r}", directory)
    token = _token_of(contents.get("password")) or ""
    log.debug("uploaded %d certificate objects to %s", len(files), directory)
    return CertificateFiles(directory=directory, files=files, _s3=target, _token=token)


def _remove_s3(target: _S3Target, directory: str, token: str) -> None:
    try:
        client = target.client()
        owner_key = target.keys.get("password")
        if token and owner_key:
            try:
                current = _token_of(client.get_object(Bucket=target.bucket, Key=owner_key)["Body"].read())
            except Exception as exc:
                if _s3_code(exc) not in ("NoSuchKey", "NoSuchBucket", "404"):
                    raise
                current = None
            if current is not None and current != token:
                log.debug("%s was rewritten by another connection; leaving it", directory)
                return
        for key in target.keys.values():
            try:
                client.delete_object(Bucket=target.bucket, Key=key)
            except Exception as exc:
                if _s3_code(exc) not in ("NoSuchKey", "NoSuchBucket", "404"):
                    raise
    except Exception as exc:
        _raise_s3(exc, f"cannot remove the certificates from {directory!r}", directory)


def _s3_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _raise_s3(exc: Exception, message: str, directory: str) -> NoReturn:
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        code = _s3_code(exc)
        hint = " (no such bucket)" if code == "NoSuchBucket" else ""
        raise CertificateError(f"{message}: {code}{hint}", folder=directory, aws_error=code) from exc
    if isinstance(exc, BotoCoreError):
        raise CertificateError(f"{message}: {type(exc).__name__}: {exc}", folder=directory) from exc
    raise exc


def read_credentials(cert_folder: str, host: str, project: str, *,
                     session: boto3.Session | None = None, s3_endpoint_url: str | None = None) -> dict[str, bytes]:
    """The CA chain, client certificate and key that an earlier ``connect()`` wrote to
    ``<cert_folder>/<host>/<project>/`` (a directory, a ``/dbfs/mnt`` mount or ``s3://``):
    what a Spark executor needs to reach the store without fetching new credentials.

    Returns:
        ``{"ca_chain": pem, "client_cert": pem, "client_key": pem}``.

    Raises:
        CertificateError: a file is missing or unreadable (it names the file, never its content).
    """
    _check_component(host, "host", _HOST_RE)
    _check_component(project, "project", _PROJECT_RE)
    names = ("ca_chain", "client_cert", "client_key")
    out: dict[str, bytes] = {}
    folder = str(cert_folder)
    if folder.startswith("s3://"):
        import boto3 as _boto3

        bucket, _, prefix = folder[len("s3://"):].partition("/")
        base = "/".join(part for part in (prefix.strip("/"), host, project) if part)
        client = (session or _boto3.Session()).client("s3", endpoint_url=s3_endpoint_url)
        for name in names:
            key = f"{base}/{FILES[name].filename}"
            try:
                out[name] = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            except Exception as exc:
                raise CertificateError(
                    f"cannot read s3://{bucket}/{key}: {type(exc).__name__}; run connect() with this "
                    "cert_folder on the driver first") from exc
        return out
    directory = local_folder(folder) / host / project
    for name in names:
        path = directory / FILES[name].filename
        try:
            out[name] = path.read_bytes()
        except OSError as exc:
            raise CertificateError(
                f"cannot read {path}: {exc.strerror}; run connect() with this cert_folder on the "
                "driver first") from exc
    return out
