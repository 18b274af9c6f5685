"""Bearer tokens: the sandbox operator's, and service-account tokens a cluster signs itself.

A service-account token is `header.payload.signature` (HMAC-SHA256 with the cluster's own key),
so a token of one cluster is worthless on another. A valid token names a user (`authenticate`): the
operator's is `sandbox-operator` in `system:masters`, the cluster's admin as on any cluster made with
admin credentials; a service account's is `system:serviceaccount:<ns>:<name>` in the groups the
real service-account authenticator gives it (k8s.io/apiserver `serviceaccount.UserInfo`). What a user
may do is `rbac.py`'s to decide.

A signature is not enough, as on a real API server: with a `lookup` of the cluster's objects, a token
is refused once what it was issued for is gone (kubernetes pkg/serviceaccount/legacy.go
`legacyValidator.Validate` for a token Secret's token: the Secret must exist, not be deleted and
still hold that very token, the ServiceAccount must exist with the uid in the claims; and the
ServiceAccount's uid for a TokenRequest token, pkg/serviceaccount/claims.go). Deleting the token
Secret is how a long-lived token is revoked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

from meshwright.sandbox.kube.rbac import User

# (type key, namespace, name) -> the stored object or None; type keys as the store has them
Lookup = Callable[[str, str, str], dict[str, Any] | None]
SECRETS, SERVICE_ACCOUNTS = "/secrets", "/serviceaccounts"

OPERATOR = User("sandbox-operator", ("system:masters", "system:authenticated"))
ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64std(data: bytes) -> str:
    return base64.b64encode(data).decode()


def service_account_user(namespace: str, name: str) -> User:
    groups = ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated")
    return User(f"system:serviceaccount:{namespace}:{name}", groups)


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenAuthority:
    def __init__(self, *, issuer: str, key: bytes, operator_token: str, lookup: Lookup | None = None) -> None:
        self.issuer, self._key, self._operator, self.lookup = issuer, key, operator_token, lookup

    def issue(
        self,
        *,
        namespace: str,
        service_account: str,
        uid: str,
        expires: int | None,
        secret: str | None = None,
    ) -> str:
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": f"system:serviceaccount:{namespace}:{service_account}",
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": service_account, "uid": uid},
            },
            "iat": int(time.time()),
        }
        if expires is not None:
            claims["exp"] = expires
        if secret:
            claims["kubernetes.io"]["secret"] = {"name": secret}
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{header}.{payload}.{self._sign(f'{header}.{payload}')}"

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode(), hashlib.sha256).digest())

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a valid token ({} for the operator), or None."""
        if hmac.compare_digest(token.encode(), self._operator.encode()):
            return {}
        parts = token.split(".")
        if len(parts) != 3 or not hmac.compare_digest(parts[2], self._sign(f"{parts[0]}.{parts[1]}")):
            return None
        try:
            claims: dict[str, Any] = json.loads(_unb64(parts[1]))
        except ValueError:
            return None
        if claims.get("iss") != self.issuer or claims.get("exp", float("inf")) < time.time():
            return None
        return claims

    def authenticate(self, token: str) -> User | None:
        """The user a valid token names, or None."""
        claims = self.verify(token)
        if claims is None:
            return None
        if not claims:
            return OPERATOR
        account = claims.get("kubernetes.io") or {}
        namespace = account.get("namespace") if isinstance(account, dict) else None
        sa = account.get("serviceaccount") if isinstance(account, dict) else None
        name = sa.get("name") if isinstance(sa, dict) else None
        if not isinstance(namespace, str) or not isinstance(name, str):
            return None
        if self.lookup is not None and self.revoked(token, account, namespace, name):
            return None
        return service_account_user(namespace, name)

    def revoked(self, token: str, account: dict[str, Any], namespace: str, name: str) -> bool:
        """What kube-apiserver's lookup refuses: a token Secret gone, deleted or holding another
        token ("Token has been invalidated", "Token does not match server's copy"), or a
        ServiceAccount gone or re-created (its uid is not the claims')."""
        assert self.lookup is not None
        secret = account.get("secret")
        if isinstance(secret, dict):
            stored = self.lookup(SECRETS, namespace, str(secret.get("name", "")))
            if stored is None or stored["metadata"].get("deletionTimestamp"):
                return True
            if (stored.get("data") or {}).get("token") != _b64std(token.encode()):
                return True
        sa = self.lookup(SERVICE_ACCOUNTS, namespace, name)
        uid = (account.get("serviceaccount") or {}).get("uid")
        return sa is None or bool(sa["metadata"].get("deletionTimestamp")) or sa["metadata"].get("uid") != uid
