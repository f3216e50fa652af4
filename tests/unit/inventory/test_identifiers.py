"""Property tests for MAC / serial normalisation: every spelling an admin types must agree."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from inventory.catalog import POLY_OUIS
from inventory.errors import InvalidIdentifier
from inventory.identifiers import (
    MAX_SERIAL_LENGTH,
    format_mac,
    looks_like_mac,
    mac_warning,
    normalize_mac,
    normalize_serial,
)

HEX = "0123456789abcdef"


def _is_unicast(mac: str) -> bool:
    return not int(mac[1], 16) & 1


def _mac(first_octet: int, rest: int) -> str:
    return f"{first_octet:02x}{rest:010x}"


_octets = st.integers(min_value=0, max_value=255)
_rests = st.integers(min_value=0, max_value=2**40 - 1)
unicast_macs = st.builds(lambda o, r: _mac(o & 0xFE, r), _octets, _rests).filter(
    lambda mac: mac != "000000000000"
)
multicast_macs = st.builds(lambda o, r: _mac(o | 0x01, r), _octets, _rests).filter(
    lambda mac: mac != "ffffffffffff"
)


def _spell(mac: str, style: int, upper: bool, pad: tuple[str, str]) -> str:
    pairs = [mac[i : i + 2] for i in range(0, 12, 2)]
    spelled = [
        ":".join(pairs),
        "-".join(pairs),
        ".".join(mac[i : i + 4] for i in range(0, 12, 4)),
        mac,
        " ".join(pairs),
    ][style]
    spelled = spelled.upper() if upper else spelled
    return pad[0] + spelled + pad[1]


spellings = st.tuples(
    st.integers(min_value=0, max_value=4),
    st.booleans(),
    st.tuples(st.sampled_from(["", " ", "  ", "\t"]), st.sampled_from(["", " ", "\r\n"])),
)


@given(unicast_macs, spellings)
@example("0004f2aabbcc", (0, True, ("", "")))
def test_every_spelling_of_a_mac_normalises_to_the_same_12_hex(
    mac: str, spelling: tuple[int, bool, tuple[str, str]]
) -> None:
    text = _spell(mac, *spelling)
    assert normalize_mac(text) == mac
    assert looks_like_mac(text)


@given(unicast_macs, spellings)
def test_normalising_a_mac_is_idempotent(
    mac: str, spelling: tuple[int, bool, tuple[str, str]]
) -> None:
    once = normalize_mac(_spell(mac, *spelling))
    assert normalize_mac(once) == once
    assert normalize_mac(format_mac(once)) == once


@given(st.text(alphabet=HEX + HEX.upper(), max_size=24).filter(lambda s: len(s) != 12))
def test_wrong_number_of_hex_digits_is_rejected_with_the_count(digits: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        normalize_mac(digits)
    assert caught.value.field == "mac"
    if digits:
        assert f"has {len(digits)} hex digits, a MAC has 12" in caught.value.reason
    else:
        assert caught.value.reason == "is empty"


@given(unicast_macs, st.integers(min_value=0, max_value=11), st.sampled_from("gGzZx?!#_/"))
def test_non_hex_characters_are_rejected_and_named(mac: str, at: int, bad: str) -> None:
    text = mac[:at] + bad + mac[at + 1 :]
    with pytest.raises(InvalidIdentifier) as caught:
        normalize_mac(text)
    assert "not hex digits" in caught.value.reason
    assert bad.lower() in caught.value.reason
    assert not looks_like_mac(text)


@given(multicast_macs, spellings)
def test_multicast_macs_are_rejected(mac: str, spelling: tuple[int, bool, tuple[str, str]]) -> None:
    with pytest.raises(InvalidIdentifier, match="multicast"):
        normalize_mac(_spell(mac, *spelling))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("ff:ff:ff:ff:ff:ff", "broadcast"),
        ("FFFF.FFFF.FFFF", "broadcast"),
        ("00:00:00:00:00:00", "all-zero"),
        ("0000.0000.0000", "all-zero"),
        ("   ", "is empty"),
    ],
)
def test_special_addresses_are_rejected_with_their_name(text: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier, match=reason):
        normalize_mac(text)


printable = st.characters(blacklist_categories=("Cc", "Cs"))


@given(st.text(alphabet=printable, max_size=MAX_SERIAL_LENGTH + 8))
def test_serial_normalisation_trims_upper_cases_and_is_idempotent(text: str) -> None:
    expected = text.strip().upper()
    if not expected:
        with pytest.raises(InvalidIdentifier, match="is empty"):
            normalize_serial(text)
    elif len(expected) > MAX_SERIAL_LENGTH:
        with pytest.raises(InvalidIdentifier, match="characters long"):
            normalize_serial(text)
    else:
        serial = normalize_serial(text)
        assert serial == expected
        assert normalize_serial(serial) == serial
        assert normalize_serial(f"  {text}\t") == serial


CONTROLS = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0)) if not chr(c).isspace()]


@given(
    st.text(alphabet="abcXYZ019-", min_size=1, max_size=10),
    st.sampled_from(CONTROLS),
    st.text(alphabet="abcXYZ019-", min_size=1, max_size=10),
)
def test_serial_with_a_control_character_is_rejected(head: str, control: str, tail: str) -> None:
    with pytest.raises(InvalidIdentifier, match="control characters"):
        normalize_serial(head + control + tail)


@pytest.mark.parametrize("control", ["\t", "\n", "\x1b", "\x7f", "\x85", "\x9f"])
def test_serial_with_inner_whitespace_controls_or_c1_controls_is_rejected(control: str) -> None:
    with pytest.raises(InvalidIdentifier, match="control characters"):
        normalize_serial(f"AB{control}CD")


@given(st.text(alphabet="ABC123", min_size=MAX_SERIAL_LENGTH + 1, max_size=200))
def test_overlong_serial_is_rejected_naming_length_and_limit(text: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        normalize_serial(text)
    assert f"is {len(text)} characters long, the limit is {MAX_SERIAL_LENGTH}" in str(caught.value)


@pytest.mark.parametrize("text", ["", "   ", "\t\r\n"])
def test_blank_serial_is_rejected(text: str) -> None:
    with pytest.raises(InvalidIdentifier, match="is empty"):
        normalize_serial(text)


@given(st.sampled_from(sorted(POLY_OUIS)), st.integers(min_value=0, max_value=2**24 - 1))
@example("0004f2", 0xAABBCC)
@example("64167f", 1)
@example("482567", 0xFFFFFF)
def test_poly_ouis_give_no_warning(oui: str, suffix: int) -> None:
    assert mac_warning(f"{oui}{suffix:06x}") is None


@given(unicast_macs.filter(lambda mac: mac[:6] not in POLY_OUIS))
@example("001122334455")
def test_a_mac_outside_poly_ouis_gives_a_warning_naming_it(mac: str) -> None:
    warning = mac_warning(mac)
    assert warning is not None
    assert format_mac(mac) in warning
    assert "not in a Poly OUI" in warning


def test_warning_names_the_registered_vendor_when_known() -> None:
    warning = mac_warning("00000c123456")  # Cisco's first OUI
    assert warning is not None
    assert "registered to Cisco" in warning
