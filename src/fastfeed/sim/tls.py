"""A throwaway local certificate authority, so the simulator can serve wss:// that clients verify."""
from __future__ import annotations

import ssl
from pathlib import Path


class LocalCA:
    """A CA made at start, and a server certificate from it for 127.0.0.1, ::1 and localhost.

    The private keys live only in memory (and in temp files trustme removes at once).
    """

    def __init__(self) -> None:
        try:
            import trustme  # only a wss:// simulator needs it: the `tls` extra
        except ModuleNotFoundError:
            raise RuntimeError("the simulator's TLS needs trustme: pip install 'fastfeed[tls]'") from None
        self._ca = trustme.CA(organization_name="fastfeed simulator")
        self._cert = self._ca.issue_cert("127.0.0.1", "::1", "localhost")

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate (PEM): what a client must trust."""
        return self._ca.cert_pem.bytes()

    def write_ca(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_bytes(self.ca_pem)
        return path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._cert.configure_cert(ctx)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A client context with verification on (hostname and chain) that trusts only this CA."""
        ctx = ssl.create_default_context(cadata=self.ca_pem.decode("ascii"))
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx
