"""Trying a remote kubeconfig for real: HTTPS to its server, verified with its CA, with its token.

The request is the first one istiod's informers make for a remote cluster (the namespace filter
lists namespaces), so it needs what they need: a reachable server, a certificate the kubeconfig's
CA verifies, and a token that server accepts.
"""

from __future__ import annotations

import http.client
import ssl
from urllib.parse import urlsplit

from meshwright.sandbox.mesh.istiod import ProbeResult, RemoteConfig

PATH = "/api/v1/namespaces?limit=1"
TIMEOUT = 2.0


def probe(config: RemoteConfig, *, timeout: float = TIMEOUT) -> ProbeResult:
    """One GET against the remote API server; the reason says why it failed, never what the token is."""
    url = urlsplit(config.server)
    if url.scheme != "https" or not url.hostname:
        return ProbeResult(False, f"server {config.server!r} is not an https:// URL")
    try:
        context = ssl.create_default_context(cadata=config.ca_pem.decode() if config.ca_pem else None)
    except (ssl.SSLError, ValueError, UnicodeDecodeError):
        return ProbeResult(False, "certificate-authority-data is not a PEM certificate")
    conn = http.client.HTTPSConnection(url.hostname, url.port or 443, timeout=timeout, context=context)
    headers = {"Accept": "application/json"}
    if config.token:
        headers["Authorization"] = f"Bearer {config.token}"
    try:
        conn.request("GET", PATH, headers=headers)
        status = conn.getresponse().status
    except ssl.SSLCertVerificationError:
        return ProbeResult(False, "x509: certificate signed by unknown authority")
    except TimeoutError:
        return ProbeResult(False, f"no answer from {url.netloc} within {timeout:.0f}s")
    except OSError as e:
        return ProbeResult(False, f"cannot reach {url.netloc}: {e.strerror or type(e).__name__}")
    finally:
        conn.close()
    if status == 200:
        return ProbeResult(True)
    if status == 401:
        return ProbeResult(False, "Unauthorized: the token is not accepted")
    return ProbeResult(False, f"listing namespaces answered HTTP {status}")
