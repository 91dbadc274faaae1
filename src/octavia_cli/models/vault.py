"""Encryption at rest for the voice library: AES-256-GCM (``cryptography``), one random
key per machine (or per server).

The key comes from, in this order:

1. ``OCTAVIA_VOICE_KEY``: 32 bytes as URL-safe base64 (``octavia voices key`` prints a new
   one); what a cluster sets on serve and every worker, from one secret;
2. the OS keyring (``keyring``: the Secret Service, macOS Keychain, Windows Credential
   Locker), where one answers; a new key is stored there on first use;
3. a key file of its own, readable by its owner only (0600), made on first use:
   ``<user config dir>/octavia/voice.key``.

Every encrypted file starts with ``OCTV1``, the key's id (the first 8 bytes of its SHA-256:
not secret, it only tells which key a file needs) and the 12-byte nonce; the file's role
(``profile.json``, ``conditioning.pt``...) is bound to it as associated data, so a file
cannot be passed off as another. Exported voices are sealed with a passphrase instead
(scrypt, n=2^15, r=8, p=1: about 0.1 s and 32 MB to try one passphrase).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
from pathlib import Path

from octavia_cli.errors import ConfigError, InputError

logger = logging.getLogger(__name__)

KEY_ENV = "OCTAVIA_VOICE_KEY"
KEYRING_SERVICE = "octavia"
KEYRING_NAME = "voice-library-key"
MAGIC = b"OCTV1"
SEALED = b"OCTVX1"  # an archive sealed with a passphrase
KEY_BYTES, NONCE_BYTES, ID_BYTES, SALT_BYTES = 32, 12, 8, 16
SCRYPT = {"n": 2**15, "r": 8, "p": 1}


class VoiceKeyError(InputError):
    """The voice library cannot be opened with the key this machine has."""


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:ID_BYTES]


def new_key_text() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def _decode(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"{where} is not a voice key (32 bytes in URL-safe base64).",
            "Make one with: octavia voices key --new",
        )
    return key


def load_key(key_file: Path) -> bytes:
    """The voice key: from ``OCTAVIA_VOICE_KEY``, else the OS keyring, else ``key_file``
    (each made on first use where it can be)."""
    if os.environ.get(KEY_ENV):
        return _decode(os.environ[KEY_ENV], KEY_ENV)
    from_keyring = _keyring_key()
    if from_keyring is not None:
        return from_keyring
    return _file_key(key_file)


def key_text(key_file: Path) -> str:
    """The voice key as ``OCTAVIA_VOICE_KEY`` takes it."""
    return base64.urlsafe_b64encode(load_key(key_file)).decode()


def _keyring_key() -> bytes | None:
    """The key kept in the OS keyring (stored there first if there is none yet); None where
    no keyring answers (a server, a container, this machine without a desktop session)."""
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:
        return None
    try:
        backend = keyring.get_keyring()
        if getattr(backend, "priority", 0) <= 0:  # keyring's "fail" and null backends
            return None
        text = keyring.get_password(KEYRING_SERVICE, KEYRING_NAME)
        if text is None:
            text = new_key_text()
            keyring.set_password(KEYRING_SERVICE, KEYRING_NAME, text)
            logger.info("a new voice key is in the OS keyring (%s)", type(backend).__name__)
    except (KeyringError, RuntimeError, OSError) as exc:
        logger.info("no OS keyring (%s): the voice key is in a file", exc)
        return None
    return _decode(text, "The voice key in the OS keyring")


def _file_key(path: Path) -> bytes:
    try:
        return _decode(path.read_text(encoding="ascii"), str(path))
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    text = new_key_text()
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it meanwhile
        return _decode(path.read_text(encoding="ascii"), str(path))
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(text + "\n")
    logger.info("a new voice key is in %s (0600)", path)
    return _decode(text, str(path))


class Vault:
    """Seals and opens the voice library's files with one key."""

    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(key)
        self.id = key_id(key)

    def seal(self, data: bytes, role: str) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        header = MAGIC + self.id + nonce
        return header + self._aead.encrypt(nonce, data, MAGIC + self.id + role.encode())

    def open(self, blob: bytes, role: str, where: str) -> bytes:
        """The plain bytes of ``blob`` (read from ``where``).

        Raises:
            VoiceKeyError: it was sealed with another key, or it is damaged.
        """
        from cryptography.exceptions import InvalidTag

        if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + ID_BYTES + NONCE_BYTES + 16:
            raise VoiceKeyError(f"{where} is not an encrypted voice file.")
        sealed_by = blob[len(MAGIC) : len(MAGIC) + ID_BYTES]
        if sealed_by != self.id:
            raise VoiceKeyError(
                f"The voice library was encrypted with another key (id {sealed_by.hex()}; this "
                f"machine's is {self.id.hex()}), so {where} cannot be read.",
                f"Set {KEY_ENV} to the key it was made with (the serve and every worker "
                "need the same one).",
            )
        start = len(MAGIC) + ID_BYTES
        nonce = blob[start : start + NONCE_BYTES]
        try:
            return self._aead.decrypt(
                nonce, blob[start + NONCE_BYTES :], MAGIC + self.id + role.encode()
            )
        except InvalidTag:
            raise VoiceKeyError(
                f"{where} does not decrypt with the voice key (damaged, or altered).",
                "Remove the voice and clone it again.",
            ) from None


def seal_with_passphrase(data: bytes, passphrase: str) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    salt, nonce = secrets.token_bytes(SALT_BYTES), secrets.token_bytes(NONCE_BYTES)
    key = _stretch(passphrase, salt)
    return SEALED + salt + nonce + AESGCM(key).encrypt(nonce, data, SEALED)


def is_sealed(blob: bytes) -> bool:
    return blob.startswith(SEALED)


def open_with_passphrase(blob: bytes, passphrase: str, where: str) -> bytes:
    """Raises InputError for a wrong passphrase or a damaged archive."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    start = len(SEALED)
    salt = blob[start : start + SALT_BYTES]
    nonce = blob[start + SALT_BYTES : start + SALT_BYTES + NONCE_BYTES]
    try:
        return AESGCM(_stretch(passphrase, salt)).decrypt(
            nonce, blob[start + SALT_BYTES + NONCE_BYTES :], SEALED
        )
    except InvalidTag:
        raise InputError(
            f"The passphrase does not open {where} (or the file is damaged).",
            "Give the passphrase it was exported with.",
        ) from None


def _stretch(passphrase: str, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=KEY_BYTES, **SCRYPT).derive(passphrase.encode("utf-8"))
