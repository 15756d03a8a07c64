"""ui.webrtc: the aioice loopback patch and loopback-address detection (no browser, no network)."""
from __future__ import annotations

import pytest

from ui.webrtc import is_loopback_host, use_loopback_ice


@pytest.mark.parametrize("found, offered", [
    ([], ["127.0.0.1"]),                              # only lo: loopback becomes the candidate
    (["fd00::2"], ["fd00::2", "127.0.0.1"]),          # IPv6 only: still no IPv4 path, add loopback
    (["192.0.2.2"], ["192.0.2.2"]),                   # a real interface: unchanged
])
def test_loopback_is_offered_only_when_no_other_ipv4_address_exists(monkeypatch, found, offered):
    from aioice import ice

    monkeypatch.setattr(ice, "get_host_addresses", lambda use_ipv4, use_ipv6: list(found))
    use_loopback_ice()
    use_loopback_ice()  # a second call does not wrap twice
    assert ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == offered
    assert ice.get_host_addresses(use_ipv4=False, use_ipv6=True) == found  # no IPv4 asked for: nothing added


def test_an_app_served_on_loopback_offers_only_loopback(monkeypatch):
    from aioice import ice

    monkeypatch.setattr(ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["192.0.2.2", "fd00::2"])
    use_loopback_ice(only=True)
    try:
        assert ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1"]
    finally:
        use_loopback_ice(only=False)
    assert ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["192.0.2.2", "fd00::2"]


@pytest.mark.parametrize("address, loopback", [("127.0.0.1", True), ("127.0.1.1", True), ("localhost", True),
                                               ("::1", True), ("[::1]", True), ("0.0.0.0", False),
                                               ("192.0.2.2", False), ("", False), (None, False),
                                               ("my-laptop.local", False)])
def test_is_loopback_host(address, loopback):
    assert is_loopback_host(address) is loopback
