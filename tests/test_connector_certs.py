"""Certificates written by connect(): a local folder, a FUSE mount stand-in, and s3:// (moto)."""

from __future__ import annotations

import datetime as dt
import errno
import os
import stat
import threading
import traceback
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from cloudsdk.client import certificates
from cloudsdk.client.certificates import CertificateFiles, local_folder, write_credentials
from cloudsdk.errors import CertificateError, CloudSDKError, InvalidArgumentError
from tests import aws
from tests.aws import REGION, MotoServer, admin_session

# The local-AWS fixtures (a moto server process and an environment pointing at it).
moto_server = aws.moto_server
aws_env = aws.aws_env

HOST = "fs.example.com"
PROJECT = "fraud_detection"
PASSWORD = "pw-Kx81Lq0ZrTe55vNb"

NAMES = {
    "ca_chain": "ca_chain.pem",
    "client_cert": "client.pem",
    "client_key": "client_key.pem",
    "pkcs12": "keystore.p12",
    "keystore_jks": "keyStore.jks",
    "truststore_jks": "trustStore.jks",
    "password": "material_passwd",
}
SECRET_FILES = {"client_key", "pkcs12", "keystore_jks", "truststore_jks", "password"}


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_credentials(tag: str = "a", *, padding: int = 0, password: str = PASSWORD) -> dict[str, Any]:
    """What the server's credentials endpoint returns, with a real CA and client certificate.

    ``padding`` adds that many bytes of extra CA certificates to the chain (a big file makes
    a torn read likely if writes were not atomic).
    """
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(_name(f"ca-{tag}")).issuer_name(_name(f"ca-{tag}"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(_name(f"user-{tag}")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
    chain = ca_pem * max(1, padding // len(ca_pem) + 1) if padding else ca_pem
    return {
        "ca_chain_pem": chain,
        "certificate_pem": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "private_key_pem": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        "pkcs12": pkcs12.serialize_key_and_certificates(
            b"client", key, cert, [ca], serialization.BestAvailableEncryption(password.encode())
        ),
        "keystore_jks": b"\xfe\xed\xfe\xed" + tag.encode() * 64,  # opaque bytes to the writer
        "truststore_jks": b"\xfe\xed\xfe\xed" + tag.encode() * 32,
        "password": password,
    }


def expected_bytes(credentials: dict[str, Any], name: str) -> bytes:
    value = credentials[certificates.FILES[name].field]
    return value if isinstance(value, bytes) else value.encode()


def assert_written(files: CertificateFiles, credentials: dict[str, Any]) -> None:
    assert set(files.files) == set(NAMES)
    for name, path in files.files.items():
        assert Path(path).name == NAMES[name]
        assert Path(path).read_bytes() == expected_bytes(credentials, name)


def no_password(exc: BaseException, password: str = PASSWORD) -> None:
    text = "".join(traceback.format_exception(exc)) + repr(exc.args)
    if isinstance(exc, CloudSDKError):
        text += repr(exc.context)
    assert password not in text


# ----------------------------------------------------------------------- local folder


def test_local_folder(tmp_path: Path) -> None:
    credentials = make_credentials()
    files = write_credentials(credentials, str(tmp_path / "certs"), HOST, PROJECT)
    assert files.directory == str(tmp_path / "certs" / HOST / PROJECT)
    assert not files.on_s3
    assert_written(files, credentials)
    assert sorted(p.name for p in Path(files.directory).iterdir()) == sorted(NAMES.values())
    # The files are what they claim to be.
    loaded = pkcs12.load_key_and_certificates(Path(files.files["pkcs12"]).read_bytes(),
                                              Path(files.files["password"]).read_bytes())
    assert loaded[1] is not None
    assert loaded[1].subject == x509.load_pem_x509_certificate(
        Path(files.files["client_cert"]).read_bytes()).subject


def test_file_modes(tmp_path: Path) -> None:
    files = write_credentials(make_credentials(), str(tmp_path), HOST, PROJECT)
    umask = os.umask(0)
    os.umask(umask)
    for name, path in files.files.items():
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if name in SECRET_FILES:
            assert mode == 0o600, (name, oct(mode))
        else:
            assert mode == 0o644 & ~umask, (name, oct(mode))


def test_secret_modes_are_restored_on_rewrite(tmp_path: Path) -> None:
    files = write_credentials(make_credentials(), str(tmp_path), HOST, PROJECT)
    os.chmod(files.files["client_key"], 0o644)
    write_credentials(make_credentials("b"), str(tmp_path), HOST, PROJECT)
    assert stat.S_IMODE(os.stat(files.files["client_key"]).st_mode) == 0o600


def test_relative_and_home_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    files = write_credentials(make_credentials(), "rel", HOST, PROJECT)
    assert files.directory == str(tmp_path / "rel" / HOST / PROJECT)  # absolute for executors
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    files = write_credentials(make_credentials(), "~/certs", HOST, PROJECT)
    assert files.directory == str(tmp_path / "home" / "certs" / HOST / PROJECT)


def test_dbfs_url_is_the_fuse_path() -> None:
    assert local_folder("dbfs:/mnt/certs") == Path("/dbfs/mnt/certs")
    assert local_folder("dbfs:///mnt/certs") == Path("/dbfs/mnt/certs")
    assert local_folder("/dbfs/mnt/certs") == Path("/dbfs/mnt/certs")


def test_rewrite_refreshes(tmp_path: Path) -> None:
    first, second = make_credentials("a"), make_credentials("b")
    files = write_credentials(first, str(tmp_path), HOST, PROJECT)
    again = write_credentials(second, str(tmp_path), HOST, PROJECT)
    assert again.files == files.files
    assert_written(again, second)
    # No temporary files are left behind.
    assert sorted(p.name for p in Path(files.directory).iterdir()) == sorted(NAMES.values())


def test_optional_keystores(tmp_path: Path) -> None:
    credentials = make_credentials()
    for field in ("pkcs12", "keystore_jks", "truststore_jks"):
        del credentials[field]
    files = write_credentials(credentials, str(tmp_path), HOST, PROJECT)
    assert set(files.files) == {"ca_chain", "client_cert", "client_key", "password"}
    files.remove()
    assert not tmp_path.joinpath(HOST).exists()


def test_remove_local(tmp_path: Path) -> None:
    folder = tmp_path / "certs"
    folder.mkdir()
    files = write_credentials(make_credentials(), str(folder), HOST, PROJECT)
    other = write_credentials(make_credentials(), str(folder), HOST, "other_project")
    files.remove()
    assert not Path(files.directory).exists()
    assert all(Path(p).exists() for p in other.files.values())  # another project is untouched
    files.remove()  # idempotent
    other.remove()
    assert folder.is_dir() and list(folder.iterdir()) == []  # the cert_folder itself stays


def test_remove_leaves_foreign_files(tmp_path: Path) -> None:
    files = write_credentials(make_credentials(), str(tmp_path), HOST, PROJECT)
    foreign = Path(files.directory) / "notes.txt"
    foreign.write_text("mine")
    files.remove()
    assert foreign.read_text() == "mine"
    assert [p.name for p in Path(files.directory).iterdir()] == ["notes.txt"]


def test_repr_shows_paths_not_the_password(tmp_path: Path) -> None:
    files = write_credentials(make_credentials(), str(tmp_path), HOST, PROJECT)
    text = repr(files) + str(files)
    assert PASSWORD not in text
    assert files.files["password"] in text and "CertificateFiles(directory=" in text


# ---------------------------------------------------------------- FUSE mount stand-in


def test_mount_without_rename_or_chmod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A /dbfs/mnt/... stand-in: rename and chmod fail; complete files are still written."""
    mount = tmp_path / "dbfs" / "mnt" / "certs"
    calls = {"replace": 0, "chmod": 0}

    def no_rename(src: Any, dst: Any) -> None:
        calls["replace"] += 1
        raise OSError(errno.EPERM, "Operation not permitted", str(src))

    def no_chmod(path: Any, mode: int, **kwargs: Any) -> None:
        calls["chmod"] += 1
        raise PermissionError(errno.EPERM, "Operation not permitted", str(path))

    monkeypatch.setattr(os, "replace", no_rename)
    monkeypatch.setattr(os, "chmod", no_chmod)
    first, second = make_credentials("a"), make_credentials("b", padding=200_000)
    files = write_credentials(first, str(mount), HOST, PROJECT)
    assert_written(files, first)
    files = write_credentials(second, str(mount), HOST, PROJECT)  # rewrite in place
    assert_written(files, second)
    assert calls["replace"] == 2 * len(NAMES) and calls["chmod"] >= len(SECRET_FILES)
    # The failed renames left no temporary files behind.
    assert sorted(p.name for p in Path(files.directory).iterdir()) == sorted(NAMES.values())
    files.remove()
    assert not (mount / HOST).exists()


def test_mount_without_exclusive_create(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def no_excl(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        if flags & os.O_EXCL:
            raise OSError(errno.ENOTSUP, "Operation not supported", str(path))
        return real_open(path, flags, mode, **kwargs)

    monkeypatch.setattr(os, "open", no_excl)
    credentials = make_credentials()
    assert_written(write_credentials(credentials, str(tmp_path), HOST, PROJECT), credentials)


def test_full_disk_does_not_truncate_the_old_file(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_credentials("a")
    files = write_credentials(first, str(tmp_path), HOST, PROJECT)
    real_open = os.open

    def full(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        if flags & os.O_EXCL:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, flags, mode, **kwargs)

    with monkeypatch.context() as patch, pytest.raises(CertificateError, match="No space left") as info:
        patch.setattr(os, "open", full)
        write_credentials(make_credentials("b"), str(tmp_path), HOST, PROJECT)
    no_password(info.value)
    assert_written(files, first)  # the previous, complete files are still there


def test_concurrent_reader_never_sees_half_a_file(tmp_path: Path) -> None:
    """A reader polling the files while they are rewritten sees old or new, never a mix."""
    versions = [make_credentials("a", padding=300_000), make_credentials("b", padding=300_000)]
    files = write_credentials(versions[0], str(tmp_path), HOST, PROJECT)
    allowed = {name: {expected_bytes(v, name) for v in versions} for name in ("ca_chain", "client_key")}
    stop = threading.Event()
    bad: list[str] = []
    reads = [0]

    def reader() -> None:
        while not stop.is_set():
            for name, options in allowed.items():
                data = Path(files.files[name]).read_bytes()
                reads[0] += 1
                if data not in options:
                    bad.append(f"{name}: {len(data)} bytes")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(60):
            write_credentials(versions[i % 2], str(tmp_path), HOST, PROJECT)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert reads[0] > 10
    assert bad == []


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("host", ["", ".", "..", "../etc", "a/b", "a\\b", "..hidden", "a..b",
                                  "/abs", "host name", "x\x00y", "-lead", "h" * 260])
def test_invalid_hosts(tmp_path: Path, host: str) -> None:
    with pytest.raises(InvalidArgumentError, match="host"):
        write_credentials(make_credentials(), str(tmp_path), host, PROJECT)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("project", ["", ".", "..", "../x", "a/b", "p\\q", "p q", ".hidden", None])
def test_invalid_projects(tmp_path: Path, project: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="project"):
        write_credentials(make_credentials(), str(tmp_path), HOST, project)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("host", ["localhost", "10.0.0.7", "fs-1.eu-west-1.compute.internal", "my_host"])
def test_valid_hosts(tmp_path: Path, host: str) -> None:
    assert write_credentials(make_credentials(), str(tmp_path), host, PROJECT).directory.endswith(
        f"/{host}/{PROJECT}")


@pytest.mark.parametrize("field", ["ca_chain_pem", "certificate_pem", "private_key_pem", "password"])
def test_missing_credentials(tmp_path: Path, field: str) -> None:
    credentials = make_credentials()
    del credentials[field]
    with pytest.raises(CertificateError, match=field) as info:
        write_credentials(credentials, str(tmp_path), HOST, PROJECT)
    no_password(info.value)
    assert list(tmp_path.iterdir()) == []


def test_malformed_credentials(tmp_path: Path) -> None:
    credentials = make_credentials()
    credentials["pkcs12"] = "not bytes"
    with pytest.raises(CertificateError, match="pkcs12"):
        write_credentials(credentials, str(tmp_path), HOST, PROJECT)
    with pytest.raises(CertificateError, match="mapping"):
        write_credentials([("password", PASSWORD)], str(tmp_path), HOST, PROJECT)  # type: ignore[arg-type]


def test_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CertificateError, match="certificate folder") as info:
        write_credentials(make_credentials(), str(blocker), HOST, PROJECT)
    assert str(blocker) in str(info.value)
    no_password(info.value)


def test_unwritable_file(tmp_path: Path) -> None:
    directory = tmp_path / HOST / PROJECT
    (directory / "material_passwd").mkdir(parents=True)  # a directory where the file goes
    with pytest.raises(CertificateError, match="material_passwd") as info:
        write_credentials(make_credentials(), str(tmp_path), HOST, PROJECT)
    assert str(directory) in str(info.value)
    no_password(info.value)


def test_other_url_schemes_are_refused(tmp_path: Path) -> None:
    for folder in ("gs://bucket/certs", "hdfs://nn/certs", "s3://", "s3:///prefix"):
        with pytest.raises(InvalidArgumentError, match="cert_folder"):
            write_credentials(make_credentials(), folder, HOST, PROJECT)


# ---------------------------------------------------------------------------------- S3


def _bucket(name: str = "certs-bucket") -> Any:
    s3 = admin_session().client("s3")
    s3.create_bucket(Bucket=name)
    return s3


def test_s3_folder(aws_env: MotoServer) -> None:
    s3 = _bucket()
    credentials = make_credentials()
    files = write_credentials(credentials, "s3://certs-bucket/team/certs/", HOST, PROJECT)
    assert files.on_s3
    assert files.directory == f"s3://certs-bucket/team/certs/{HOST}/{PROJECT}"
    assert set(files.files) == set(NAMES)
    for name, url in files.files.items():
        key = f"team/certs/{HOST}/{PROJECT}/{NAMES[name]}"
        assert url == f"s3://certs-bucket/{key}"
        head = s3.head_object(Bucket="certs-bucket", Key=key)
        assert head["ServerSideEncryption"] == "AES256"
        body = s3.get_object(Bucket="certs-bucket", Key=key)["Body"].read()
        assert body == expected_bytes(credentials, name)
    assert PASSWORD not in repr(files)


def test_s3_bucket_root_and_refresh(aws_env: MotoServer) -> None:
    s3 = _bucket()
    write_credentials(make_credentials("a"), "s3://certs-bucket", HOST, PROJECT)
    second = make_credentials("b")
    files = write_credentials(second, "s3://certs-bucket", HOST, PROJECT)
    assert files.directory == f"s3://certs-bucket/{HOST}/{PROJECT}"
    key = f"{HOST}/{PROJECT}/client_key.pem"
    assert s3.get_object(Bucket="certs-bucket", Key=key)["Body"].read() == expected_bytes(second, "client_key")
    listed = s3.list_objects_v2(Bucket="certs-bucket")["Contents"]
    assert len(listed) == len(NAMES)


def test_s3_remove(aws_env: MotoServer) -> None:
    s3 = _bucket()
    s3.put_object(Bucket="certs-bucket", Key=f"certs/{HOST}/{PROJECT}/keep.txt", Body=b"x")
    files = write_credentials(make_credentials(), "s3://certs-bucket/certs", HOST, PROJECT)
    files.remove()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="certs-bucket").get("Contents", [])]
    assert keys == [f"certs/{HOST}/{PROJECT}/keep.txt"]
    files.remove()  # idempotent
    s3.delete_object(Bucket="certs-bucket", Key=keys[0])
    s3.delete_bucket(Bucket="certs-bucket")
    files.remove()  # even without the bucket


def test_s3_with_session_and_endpoint(aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit session and endpoint, without AWS_ENDPOINT_URL or env credentials."""
    _bucket()
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                            region_name=REGION)
    files = write_credentials(make_credentials(), "s3://certs-bucket/x", HOST, PROJECT,
                              session=session, s3_endpoint_url=aws_env.url)
    s3 = session.client("s3", endpoint_url=aws_env.url)
    assert s3.head_object(Bucket="certs-bucket", Key=f"x/{HOST}/{PROJECT}/material_passwd")[
        "ServerSideEncryption"] == "AES256"
    files.remove()  # uses the same session and endpoint
    assert "Contents" not in s3.list_objects_v2(Bucket="certs-bucket")


def test_s3_missing_bucket(aws_env: MotoServer) -> None:
    with pytest.raises(CertificateError) as info:
        write_credentials(make_credentials(), "s3://no-such-bucket/certs", HOST, PROJECT)
    assert f"s3://no-such-bucket/certs/{HOST}/{PROJECT}" in str(info.value)
    assert "NoSuchBucket" in str(info.value)
    no_password(info.value)


def test_s3_unreachable(aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(CertificateError, match="s3://b/c") as info:
        write_credentials(make_credentials(), "s3://b/c", HOST, PROJECT)
    no_password(info.value)
