"""Licensing portal and provisioning server: entitlement checks, CSV export, file storage."""

from __future__ import annotations

import csv
import io

from simulator.activation_keys import check_key
from simulator.contracts import ContractKind
from tests.simulator.https_helpers import (
    contract_for,
    fleet_on_loopback,
    insecure_session,
    small_fleet,
)


async def test_portal_issues_only_under_an_active_contract() -> None:
    devices = small_fleet({"vvx": 50, "studiox": 50}, count=4, seed=8)
    covered, lapsed, bare = devices[0], devices[1], devices[2]
    contracts = [
        contract_for([covered.serial], kind=ContractKind.EXTENDED_REACTIVATION),
        contract_for([lapsed.serial], lapsed=True),
    ]
    async with fleet_on_loopback(devices, contracts) as fleet, insecure_session() as http:
        keys_url = f"{fleet.portal_url}/api/v1/keys"
        auth = {"Authorization": f"Bearer {fleet.secrets.portal_token}"}
        feature = "productivity_suite" if covered.family == "vvx" else "multipoint"
        body = {"serial": covered.serial, "feature": feature}
        async with http.post(keys_url, json=body) as resp:
            assert resp.status == 401
        async with http.post(keys_url, json=body, headers={"Authorization": "Bearer x"}) as resp:
            assert resp.status == 401
        async with http.post(keys_url, json=body, headers=auth) as resp:
            assert resp.status == 201
            issued = await resp.json()
        check = check_key(fleet.secrets.portal_secret, issued["key"], covered.serial)
        assert check.ok
        assert check.feature == feature
        assert issued["contract"] == "C-TEST-1"

        for device, error in ((lapsed, "contract_expired"), (bare, "no_contract")):
            feat = "productivity_suite" if device.family == "vvx" else "multipoint"
            async with http.post(
                keys_url, json={"serial": device.serial, "feature": feat}, headers=auth
            ) as resp:
                assert resp.status == 403
                refusal = await resp.json()
            assert refusal["error"] == error
            assert device.serial in refusal["reason"] or "ended" in refusal["reason"]

        async with http.post(
            keys_url, json={"serial": covered.serial, "feature": "teleport"}, headers=auth
        ) as resp:
            assert resp.status == 400
        async with http.post(
            keys_url, json={"serial": "NOSUCHSERIAL", "feature": feature}, headers=auth
        ) as resp:
            assert resp.status == 404

        async with http.get(f"{fleet.portal_url}/api/v1/keys.csv", headers=auth) as resp:
            rows = list(csv.DictReader(io.StringIO(await resp.text())))
        assert list(rows[0]) == ["serial", "feature", "key", "expires_at"]
        assert rows[0]["key"] == issued["key"]


async def test_offline_export_of_all_entitled_keys() -> None:
    devices = small_fleet({"dma": 100}, count=3)
    contracts = [contract_for([d.serial for d in devices[:2]])]
    async with fleet_on_loopback(devices, contracts) as fleet, insecure_session() as http:
        auth = {"Authorization": f"Bearer {fleet.secrets.portal_token}"}
        url = f"{fleet.portal_url}/api/v1/keys.csv?all_entitled=1"
        async with http.get(url, headers=auth) as resp:
            rows = list(csv.DictReader(io.StringIO(await resp.text())))
        assert {r["serial"] for r in rows} == {d.serial for d in devices[:2]}


async def test_provisioning_server_stores_and_serves_license_files() -> None:
    devices = small_fleet({"vvx": 100}, count=1)
    async with fleet_on_loopback(devices) as fleet, insecure_session() as http:
        url = f"{fleet.provisioning_url}/hq-berlin/0004F2AABBCC-license.cfg"
        async with http.get(url) as resp:
            assert resp.status == 404
        async with http.put(url, data=b"<polycomConfig/>") as resp:
            assert resp.status == 201
        async with http.get(url.replace("0004F2AABBCC", "0004f2aabbcc")) as resp:
            assert await resp.read() == b"<polycomConfig/>"
        async with http.put(f"{fleet.provisioning_url}/hq-berlin/evil.cfg", data=b"x") as resp:
            assert resp.status == 404


async def test_an_idempotency_key_gets_the_first_answer_again_and_no_second_key() -> None:
    devices = small_fleet({"vvx": 100}, count=2, seed=8)
    first, second = devices
    async with fleet_on_loopback(devices, [contract_for([d.serial for d in devices])]) as fleet:
        keys_url = f"{fleet.portal_url}/api/v1/keys"
        auth = {"Authorization": f"Bearer {fleet.secrets.portal_token}"}
        answers = []
        async with insecure_session() as http:
            for serial, op in (
                (first.serial, "RA-1"),
                (first.serial, "RA-1"),
                (second.serial, "RA-1"),
            ):
                body = {"serial": serial, "feature": "productivity_suite"}
                headers = {**auth, "Idempotency-Key": op}
                async with http.post(keys_url, json=body, headers=headers) as resp:
                    answers.append(
                        (resp.status, resp.headers.get("Idempotent-Replayed"), await resp.json())
                    )
        (created, _, issued), (replayed, flag, again), (reused, _, refusal) = answers
        assert (created, replayed, flag) == (201, 200, "true")
        assert again == issued
        assert (reused, refusal["error"]) == (422, "idempotency_key_reused")
        assert [k.serial for k in fleet.portal.issued] == [first.serial]  # issued once
