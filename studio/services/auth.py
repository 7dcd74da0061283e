"""Accounts, roles, signed-in sessions and API tokens. Passwords are kept only as salted scrypt
hashes; session and API tokens only as SHA-256 hashes."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from studio.services.errors import Forbidden, Invalid, NotFound, Unauthorized
from studio.services.signin_throttle import SigninThrottle
from studio.store import Store, api_tokens, new_id, sessions, utcnow

HASH_PREFIX = "scrypt$"
SESSION_COOKIE = "studio_session"
SESSION_DAYS = 14
VERIFIED_CACHE_SIZE = 256  # recently verified (user, password) pairs: HTTP Basic scripts skip scrypt


@dataclass(frozen=True)
class User:
    name: str
    is_admin: bool
    is_guest: bool = False

    @property
    def can_generate(self) -> bool:
        return True


GUEST = User(name="guest", is_admin=False, is_guest=True)
LOCAL_ADMIN = User(name="local", is_admin=True)  # no accounts configured: the machine's owner


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return HASH_PREFIX + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str) -> bool:
    if stored.startswith(HASH_PREFIX):
        salt_b64, digest_b64 = stored[len(HASH_PREFIX):].split("$", 1)
        expected = base64.b64decode(digest_b64)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), n=2**14, r=8, p=1, dklen=32)
        return hmac.compare_digest(got, expected)
    return hmac.compare_digest(password.encode(), stored.encode())


def parse_account(spec: str) -> tuple[str, str]:
    user, sep, password = spec.partition(":")
    if not sep or not user or not password:
        raise Invalid(f"Account '{spec.split(':')[0]}…' must be written USER:PASS.")
    return user.strip(), password


def read_auth_file(path: Path) -> list[tuple[str, str]]:
    """One `user:scrypt$…` (or `user:plain`) per line; blank lines and # comments are skipped."""
    accounts = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            accounts.append(parse_account(line))
    return accounts


def add_user_to_file(path: Path, user: str, password: str) -> None:
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    lines = [ln for ln in lines if ln.partition(":")[0].strip() != user]
    lines.append(f"{user}:{hash_password(password)}")
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)


class AuthService:
    def __init__(self, accounts: list[tuple[str, str]], guest_access: str, store: Store):
        self.store = store
        self.guest_access = guest_access
        self._accounts = {}
        for i, (name, secret) in enumerate(accounts):
            # Plain passwords from --auth are hashed in memory at once.
            stored = secret if secret.startswith(HASH_PREFIX) else hash_password(secret)
            self._accounts[name] = (stored, i == 0)
        # Only successes are remembered, keyed by a keyed hash, in a bounded LRU: wrong guesses
        # cost scrypt every time and take no memory.
        self._verified: OrderedDict[bytes, bool] = OrderedDict()
        self._verified_lock = threading.Lock()  # requests verify in several threads at once
        self._cache_key = secrets.token_bytes(32)
        # failed sign-ins: in memory, or in the database that replicas share
        self.throttle = SigninThrottle(shared=store if store.dialect == "postgresql" else None)
        # Sessions of accounts removed from the configuration since, and expired ones, end here.
        sessions.keep_only_users(store, set(self._accounts))
        sessions.sweep_expired(store, now=utcnow())

    @property
    def enabled(self) -> bool:
        return bool(self._accounts)

    def check_password(self, name: str, password: str, *, address: str | None = None) -> User | None:
        """The account for these credentials, or None. Raises SigninThrottled (429) while the
        account or the client address must wait after repeated failures."""
        entry = self._accounts.get(name)
        self.throttle.check(name if entry else None, address)
        key = hmac.new(self._cache_key, f"{name}\0{password}".encode(), hashlib.sha256).digest()
        if entry is None:
            verify_password(password, _dummy_hash())  # as slow as a real account: names don't leak by timing
            ok = False
        else:
            with self._verified_lock:
                ok = key in self._verified
            ok = ok or verify_password(password, entry[0])
        if not ok:
            self.throttle.failed(name if entry else None, address)
            return None
        with self._verified_lock:
            self._verified[key] = True
            self._verified.move_to_end(key)
            while len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        self.throttle.succeeded(name, address)
        return User(name=name, is_admin=entry[1])

    def memory_size(self) -> int:
        """Entries held for sign-in (verified pairs + throttle counters), for tests of the bound."""
        return len(self._verified) + self.throttle.size()

    # -- sessions (the sign-in cookie) ----------------------------------------------------------
    def start_session(self, user: User) -> str:
        """A new random session token for the cookie; a fresh one at every sign-in."""
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        sessions.sweep_expired(self.store, now=_iso(now))
        sessions.create(self.store, _token_hash(token), user.name, created_at=_iso(now),
                        expires_at=_iso(now + timedelta(days=SESSION_DAYS)))
        return token

    def user_for_session(self, token: str | None) -> User | None:
        """The account of a live session; None when unknown, signed out, expired or the account is gone."""
        if not token or len(token) > 200:
            return None
        name = sessions.user_for(self.store, _token_hash(token), now=utcnow())
        return self.user_named(name) if name else None

    def end_session(self, token: str | None) -> None:
        if token and len(token) <= 200:
            sessions.delete(self.store, _token_hash(token))

    def user_named(self, name: str) -> User | None:
        entry = self._accounts.get(name)
        return None if entry is None else User(name=name, is_admin=entry[1])

    def anonymous(self) -> User | None:
        """Who a request without credentials is: the local owner, a guest, or nobody."""
        if not self.enabled:
            return LOCAL_ADMIN
        if self.guest_access == "generate":
            return GUEST
        return None

    # -- API tokens ----------------------------------------------------------------------------
    def create_token(self, user: User, label: str = "") -> dict:
        if not user.is_admin:
            raise Forbidden("Only admins can create API tokens.")
        token = "aigc_" + secrets.token_urlsafe(32)
        row = {"id": new_id("tok_"), "user": user.name, "label": label[:100], "created_at": utcnow()}
        api_tokens.create(self.store, **row, token_hash=_token_hash(token))
        return {**row, "token": token}

    def list_tokens(self) -> list[dict]:
        return api_tokens.all_(self.store)

    def revoke_token(self, token_id: str) -> None:
        if not api_tokens.revoke(self.store, token_id):
            raise NotFound(f"No active API token with id '{token_id}'.")

    def user_for_token(self, token: str, *, address: str | None = None) -> User:
        """A valid token always works; guesses are throttled per client address (429)."""
        name = api_tokens.user_for(self.store, _token_hash(token))
        user = self.user_named(name) if name else None
        if user is None:
            self.throttle.check(None, address)
            self.throttle.failed(None, address)
            raise Unauthorized("This API token is unknown or revoked. Ask an admin for a new one.")
        return user


def _iso(moment: datetime) -> str:
    """The same text form as `utcnow()`, so that stored times compare in order."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
