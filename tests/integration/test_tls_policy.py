"""Every TLS endpoint of the product (the broker's HTTPS port, hostd's API and its display
relay) offers TLS 1.2 only with forward-secret AEAD suites: a client limited to CBC
suites (with or without ECDHE) gets no handshake, one offering AES-GCM gets through."""
import os
import socket
import ssl

import pytest

from broker_fixture import BROKER, Broker
from hostd_fixture import Hostd, client_context

CBC = "AES128-SHA:AES256-SHA:AES128-SHA256:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:" \
      "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384"
AEAD = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"


def tls12(ctx, ciphers):
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(ciphers)
    return ctx


def handshake(port, ctx, server_name="localhost"):
    """The suite agreed on, or None when the server refused the handshake."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname=server_name) as s:
                return s.cipher()[0]
        except (ssl.SSLError, ConnectionError):
            return None


def endpoints_refuse_cbc(port, make_ctx):
    assert handshake(port, tls12(make_ctx(), CBC)) is None, "a CBC suite was accepted"
    assert "GCM" in handshake(port, tls12(make_ctx(), AEAD))


@pytest.mark.skipif(not os.path.exists(BROKER), reason="vdi-broker not built")
def test_broker_offers_only_aead_suites(tmp_path):
    b = Broker(str(tmp_path))
    b.start()
    try:
        def make_ctx():
            ctx = b.ssl_context()
            ctx.check_hostname = False
            return ctx
        endpoints_refuse_cbc(b.port, make_ctx)
        assert b.client().request("GET", "/api/v1/session").status == 401  # still serving
    finally:
        assert b.stop() == 0, b.log()


def test_hostd_api_and_relay_offer_only_aead_suites(certs, tmp_path):
    h = Hostd(tmp_path, certs, str(tmp_path)).start()
    try:
        def make_ctx():
            ctx = client_context(certs)
            ctx.check_hostname = False
            return ctx
        endpoints_refuse_cbc(h.api_port, make_ctx)
        endpoints_refuse_cbc(h.relay_port, make_ctx)
        assert h.proc.poll() is None
    finally:
        assert h.stop() == 0, h.log()
