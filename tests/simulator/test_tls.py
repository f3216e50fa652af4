"""Device certificates: phone CN is the MAC, the same seed gives the same certificate."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from simulator.fleet import generate_fleet
from simulator.tls import CHANGED, CertificateFactory, common_name_for


def test_phone_cn_is_its_mac_and_certificates_are_stable_per_seed() -> None:
    phone, codec = generate_fleet(2, {"vvx": 50, "studiox": 50}, seed=3)
    if phone.family != "vvx":
        phone, codec = codec, phone
    assert common_name_for(phone) == phone.mac
    assert common_name_for(codec) == codec.system_name
    first, second, other_seed = CertificateFactory(1), CertificateFactory(1), CertificateFactory(2)
    try:
        cert = first.certificate(common_name_for(phone))
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        assert cn == phone.mac
        same = second.certificate(common_name_for(phone))
        changed = first.certificate(common_name_for(phone), CHANGED)
        elsewhere = other_seed.certificate(common_name_for(phone))
        prints = {
            name: c.fingerprint(hashes.SHA256())
            for name, c in {"a": cert, "b": same, "c": changed, "d": elsewhere}.items()
        }
        assert prints["a"] == prints["b"]
        assert len({prints["a"], prints["c"], prints["d"]}) == 3
        assert first.context(common_name_for(phone)) is first.context(common_name_for(phone))
    finally:
        for factory in (first, second, other_seed):
            factory.close()
