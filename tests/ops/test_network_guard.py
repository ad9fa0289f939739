"""The internet is blocked in tests: leaving the machine fails the test."""

from __future__ import annotations

import socket

import pytest
import requests

from tests.support.netguard import NetworkBlocked


def test_it_refuses_a_connection_to_a_public_address():
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("93.184.216.34", 80), timeout=1)


def test_it_refuses_to_resolve_a_public_name():
    with pytest.raises(requests.ConnectionError, match="internet is blocked"):
        requests.get("https://example.com/", timeout=1)


def test_it_allows_loopback(receiver):
    assert requests.post(receiver.hook_url(), data=b"{}", timeout=5).status_code == 200
