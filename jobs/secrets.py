"""Secret environment values of a job: named ones read when the job starts, literal ones kept
only as ciphertext.

Besides plain strings, a spec's ``env`` takes ``{from_env: NAME}`` (only the name is stored;
the value is read from the environment of the process that hands the job to Ray) and
``{secret: VALUE}`` (encrypted with Fernet, AES-128-CBC plus HMAC-SHA256, while the spec is
validated; only the token is stored). The plain value therefore lives only in memory: while
a spec is validated, and in the runtime_env given to Ray (which keeps it: see the README,
"Secrets and access").

Pure: the value types, parsing the spec's forms, sealing and opening under a ``Keyring``,
resolving a job's environment. Edge: ``process_keyring`` reads SCHED_SECRET_KEY or the key
file in the data directory (created 0600 on first use). No message here ever holds a value or a key.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

MASK = "***"
KEY_ENV = "SCHED_SECRET_KEY"
KEY_FILE = "secret.key"
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN = re.compile(r"[A-Za-z0-9_-]+=*")
_FORMS = "a string, {from_env: NAME} or {secret: VALUE}"
_MAKE_KEY = (
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


class SecretError(ValueError):
    """A secret that cannot be used; ``str()`` is one line and holds no value and no key."""


@dataclass(frozen=True, slots=True)
class FromEnv:
    """A value read, by name, from the environment of the process that hands the job to Ray
    (``sched submit``, ``sched reconcile`` or ``sched controller``), each time it does."""

    name: str

    def as_json(self) -> dict[str, str]:
        return {"from_env": self.name}


@dataclass(frozen=True, slots=True)
class Sealed:
    """A literal secret as a Fernet token: opening it takes the key; the token itself tells
    only the value's length (to 16 bytes) and when it was sealed."""

    token: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Sealed({MASK})"

    def __str__(self) -> str:
        return MASK

    def as_json(self) -> dict[str, str]:
        return {"encrypted": self.token}


EnvValue = str | FromEnv | Sealed


class Keyring:
    """Fernet keys: the first seals, any opens (so a key can be rotated in by putting the new
    one first and keeping the old one until no stored job needs it).

    ``cryptography`` is imported only here, when a secret is used: most commands never do."""

    def __init__(self, keys: list[Fernet], source: str) -> None:
        from cryptography.fernet import MultiFernet

        self._fernet = MultiFernet(keys)
        self.source = source

    @classmethod
    def parse(cls, text: str, source: str) -> Keyring:
        """Keys separated by commas or white space; ``source`` names where they came from."""
        from cryptography.fernet import Fernet

        words = text.replace(",", " ").split()
        if not words:
            raise SecretError(f"{source} holds no key (make one with: {_MAKE_KEY})")
        try:
            return cls([Fernet(word) for word in words], source)
        except (ValueError, TypeError):
            raise SecretError(
                f"{source} is not a Fernet key (44 url-safe base64 characters;"
                f" make one with: {_MAKE_KEY})"
            ) from None

    @classmethod
    def generate(cls, source: str = "a new key") -> Keyring:
        return cls.parse(new_key(), source)

    def seal(self, plain: str) -> Sealed:
        return Sealed(self._fernet.encrypt(plain.encode()).decode("ascii"))

    def open(self, sealed: Sealed) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(sealed.token.encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            raise SecretError(
                f"cannot decrypt it with {self.source}: not the key it was encrypted with"
            ) from None


def new_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


# ---- the spec's forms (pure) ----------------------------------------------------------------


def parse_env_value(raw: Any, keyring: Callable[[], Keyring]) -> EnvValue:
    """One ``env`` value as written in a spec (or as stored: ``{encrypted: TOKEN}``).

    ``keyring`` is called only for ``{secret: ...}``, whose value is sealed at once; errors
    never repeat the input, which may be a secret under a misspelt key."""
    if isinstance(raw, FromEnv | Sealed):
        return raw
    if isinstance(raw, Mapping):
        if len(raw) != 1:
            raise SecretError(f"expected {_FORMS}")
        ((form, inner),) = raw.items()
        if form == "from_env":
            if not isinstance(inner, str) or not ENV_NAME.fullmatch(inner):
                raise SecretError("from_env must name an environment variable ([A-Za-z0-9_])")
            return FromEnv(inner)
        if form == "secret":
            plain = _scalar(inner)
            if plain is None:
                raise SecretError("secret must be a string")
            return keyring().seal(plain)
        if form == "encrypted":
            if not isinstance(inner, str) or not _TOKEN.fullmatch(inner):
                raise SecretError("encrypted must be a token sched made from a secret")
            return Sealed(inner)
        raise SecretError(f"expected {_FORMS}")
    plain = _scalar(raw)
    if plain is None:
        raise SecretError(f"expected {_FORMS}")
    return plain


def _scalar(value: Any) -> str | None:
    """YAML reads ``STEPS: 100`` as an int; environment values are strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return None


def env_value_json(value: EnvValue, *, mask: bool = False) -> str | dict[str, str]:
    """How a value is stored: named and sealed ones in their own form, so the stored spec
    validates back to the same thing without needing the key. With ``mask`` (output for
    people), a sealed value is ``{secret: ***}``."""
    if isinstance(value, str):
        return value
    if mask and isinstance(value, Sealed):
        return {"secret": MASK}
    return value.as_json()


def resolve_env(
    env: Mapping[str, EnvValue], environ: Mapping[str, str], keyring: Callable[[], Keyring]
) -> dict[str, str]:
    """The plain values, for the runtime_env handed to Ray; SecretError names the variable.
    ``keyring`` is called only when a sealed value is there to open."""
    out: dict[str, str] = {}
    ring: Keyring | None = None
    for name, value in env.items():
        if isinstance(value, FromEnv):
            if value.name not in environ:
                raise SecretError(
                    f"env {name}: from_env {value.name} is not set in the environment of the"
                    " process handing the job to Ray"
                )
            out[name] = environ[value.name]
        elif isinstance(value, Sealed):
            try:
                ring = ring or keyring()
                out[name] = ring.open(value)
            except SecretError as exc:
                raise SecretError(f"env {name}: {exc}") from None
        else:
            out[name] = value
    return out


# ---- the key (the edge: environment and files) ----------------------------------------------


def process_keyring(
    environ: Mapping[str, str] | None = None, *, create: bool = True, home: Path | None = None
) -> Keyring:
    """SCHED_SECRET_KEY, else the key file in ``home`` (the settings' data directory; by
    default SCHED_HOME's); with ``create``, a missing file is made (0600). Opening never
    creates one: a new key could not open what an old one sealed, and saying so is clearer
    than failing to decrypt."""
    environ = os.environ if environ is None else environ
    text = environ.get(KEY_ENV, "")
    if text.strip():
        return Keyring.parse(text, KEY_ENV)
    if home is None:
        # The data directory's rule lives with the settings; imported here so that jobs/
        # (the spec, which scheduler/ builds on) depends on scheduler/ only at this edge.
        from scheduler.config import default_home

        try:
            home = default_home(environ)
        except ValueError as exc:
            raise SecretError(str(exc)) from None
    path = home / KEY_FILE
    return Keyring.parse(read_key_file(path, create=create), f"key file {path}")


def read_key_file(path: Path, *, create: bool) -> str:
    """The key file's text. One readable by group or others is refused (as ssh refuses a
    private key): a key anyone on the machine can read protects nothing."""
    try:
        return _read_private(path)
    except FileNotFoundError:
        if not create:
            raise SecretError(
                f"no key to decrypt with: {KEY_ENV} is not set and {path} does not exist"
            ) from None
    _create_key_file(path)
    return _read_private(path)


def _read_private(path: Path) -> str:
    try:
        with open(path, encoding="ascii") as f:
            mode = os.fstat(f.fileno()).st_mode & 0o777
            if mode & 0o077:
                raise SecretError(
                    f"key file {path} is readable by others (mode {mode:04o}): chmod 600 it"
                )
            return f.read()
    except FileNotFoundError:
        raise
    except (OSError, UnicodeError) as exc:
        raise SecretError(f"cannot read key file {path}: {_why(exc)}") from None


def _create_key_file(path: Path) -> None:
    """Write a new key beside the file, 0600 from the start, then link it into place: the
    link fails if another process made the file first, and its key is kept, so two
    processes starting together end up with one key."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            os.write(fd, f"{new_key()}\n".encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # another process's key came first
            os.link(tmp, path)
    except OSError as exc:
        raise SecretError(f"cannot create key file {path}: {_why(exc)}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _why(exc: BaseException) -> str:
    return " ".join(str(getattr(exc, "strerror", None) or exc).split())
