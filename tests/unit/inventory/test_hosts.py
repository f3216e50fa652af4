"""Device addresses: an IP literal or a DNS name (optionally with a port) and nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.provisional import domains
from pydantic import ValidationError

from device_drivers.transports import HttpTarget
from inventory.errors import InvalidIdentifier
from inventory.hosts import HostPort, _parse, normalize_host, parse_host
from inventory.models import STORED, Device

ATTACKS = [
    "127.0.0.1/../../etc",
    "evil.example;rm -rf /",
    "http://x@127.0.0.1:22/",
    "127.77.14.18/evil?x=",
    "10.255.255.1@127.77.14.16",
]
"""Issue 9: hosts that imported with exit 0 and then steered scan's requests."""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.1.2.3", HostPort("10.1.2.3")),
        (" 10.1.2.3 ", HostPort("10.1.2.3")),
        ("10.1.2.3:8443", HostPort("10.1.2.3", 8443)),
        ("fe80::1", HostPort("fe80::1")),
        ("[2001:db8:0:0::1]", HostPort("2001:db8::1")),
        ("[2001:db8::1]:443", HostPort("2001:db8::1", 443)),
        ("phone-12.lab.example.com", HostPort("phone-12.lab.example.com")),
        ("Phone12.Example.COM.", HostPort("Phone12.Example.COM.")),
        ("prov:80", HostPort("prov", 80)),
        ("bücher.example", HostPort("bücher.example")),
    ],
)
def test_addresses_and_names_are_accepted(text: str, expected: HostPort) -> None:
    assert parse_host(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        *((attack, "contains") for attack in ATTACKS),
        ("a_b.example", "contains '_'"),
        ("x\u202e.example", "contains '\\u202e'"),
        ("1.2.3.999", "is not an IPv4 address"),
        ("127.1", "is not an IPv4 address"),
        ("010.1.1.1", "is not an IPv4 address"),
        ("a..example", "has an empty label"),
        ("-a.example", "has label '-a'"),
        ("a" * 64 + ".example", "has label"),
        (".".join(["abcdefghi"] * 26), "the limit is 253"),
        ("[::1", "opens '['"),
        ("[::1]x", "after ']'"),
        ("[10.0.0.1]", "is not an IPv6 address"),
        ("2001:db8::g", "is not an IPv6 address"),
        ("10.0.0.1:0", "outside 1-65535"),
        ("10.0.0.1:99999", "outside 1-65535"),
        ("10.0.0.1:", "not a number"),
        (":80", "has a port but no host"),
        ("", "is empty"),
    ],
)
def test_anything_else_is_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        parse_host(text)
    assert caught.value.field == "host"
    assert reason in caught.value.reason


@given(st.text(alphabet="az09-.:[]_", max_size=12) | st.ip_addresses().map(str) | domains())
def test_the_fast_path_accepts_nothing_the_general_path_refuses(text: str) -> None:
    try:
        fast = parse_host(text)
    except InvalidIdentifier:
        return
    assert _parse(text.strip(), text, allow_port=True, field="host") == fast


def test_a_device_record_keeps_ports_in_their_own_fields() -> None:
    with pytest.raises(InvalidIdentifier, match="in its own field"):
        normalize_host("10.0.0.1:8443")


@pytest.mark.parametrize("attack", ATTACKS)
def test_device_model_refuses_a_bad_host_naming_the_field(attack: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Device(serial="A1", host=attack)
    [error] = caught.value.errors()
    assert error["loc"] == ("host",)
    assert error["msg"].startswith(f"host {attack!r} contains ")


def test_a_host_stored_before_validation_can_still_be_read() -> None:
    """An old store must stay listable (and fixable); DriverContext refuses to use the host."""
    device = Device.model_validate({"serial": "A1", "host": ATTACKS[0]}, context=STORED)
    assert device.host == ATTACKS[0]


def test_http_urls_are_built_from_parts() -> None:
    assert str(HttpTarget("10.0.0.1", 8443).url("/api/v1/x")) == "https://10.0.0.1:8443/api/v1/x"
    assert str(HttpTarget("fe80::1").url("rest/system")) == "https://[fe80::1]/rest/system"
    # a path stays a path: `?` and `#` cannot start a query or a fragment
    assert HttpTarget("10.0.0.1").url("/a?b=1#c").query_string == ""
    for attack in ATTACKS:
        with pytest.raises(ValueError, match="Host"):
            HttpTarget(attack).url("/api/v1/mgmt/device/info")
