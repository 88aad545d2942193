"""The HTTP listeners keep idle connections longer than the clients and proxies in front."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from roles.serve import http_config

#: The longest upstream idle timeout among the proxies we document (nginx's
#: upstream keepalive and cloud load balancers default to 60 s).
PROXY_IDLE_S = 60


def test_the_server_closes_an_idle_connection_after_its_clients_do() -> None:
    config = http_config(Starlette(), "127.0.0.1", 0)
    client_expiry = httpx.Limits().keepalive_expiry
    assert client_expiry is not None
    assert config.timeout_keep_alive > PROXY_IDLE_S
    assert config.timeout_keep_alive > client_expiry


def test_the_listener_reads_no_forwarded_headers_and_names_no_server() -> None:
    config = http_config(Starlette(), "127.0.0.1", 0)
    assert config.proxy_headers is False and config.server_header is False
