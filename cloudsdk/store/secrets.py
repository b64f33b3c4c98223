"""Secrets at rest: connector credentials are kept in the catalog encrypted with Fernet
(AES-128-CBC + HMAC-SHA256, from ``cryptography``) under a key that lives in the data
directory (``<root>/secrets.key``, mode 0600), never in the catalog database itself.

Several servers sharing one PostgreSQL catalog must share that key file too (they share the
data directory, which holds the offline tables, anyway).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from cloudsdk.errors import StorageError

KEY_FILE = "secrets.key"


class SecretBox:
    """Encrypts and decrypts small JSON secrets with the data directory's key."""

    def __init__(self, root: str | Path) -> None:
        self.path = Path(root) / KEY_FILE
        self._fernet: Fernet | None = None

    def _key(self) -> Fernet:
        if self._fernet is None:
            if not self.path.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                key = Fernet.generate_key()
                try:
                    fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:
                    pass  # another process made it first: use theirs
                else:
                    with os.fdopen(fd, "wb") as f:
                        f.write(key)
            try:
                self._fernet = Fernet(self.path.read_bytes().strip())
            except (OSError, ValueError) as exc:
                raise StorageError(f"cannot read the secrets key {self.path}: {type(exc).__name__}") from exc
        return self._fernet

    def seal(self, secrets: dict[str, Any]) -> str:
        """The ciphertext of ``secrets`` (a JSON-able dict)."""
        return self._key().encrypt(json.dumps(secrets, sort_keys=True).encode()).decode("ascii")

    def open(self, token: str) -> dict[str, Any]:
        """The secrets sealed in ``token``; StorageError when the key does not match."""
        try:
            value = json.loads(self._key().decrypt(token.encode("ascii")))
        except InvalidToken as exc:
            raise StorageError(
                f"cannot decrypt a stored secret: {self.path} is not the key it was sealed with") from exc
        if not isinstance(value, dict):  # pragma: no cover - only seal() writes these
            raise StorageError("a stored secret is malformed")
        return value
