"""ScanRecorder: first-use pins batched with the results, a changed pin after its first use."""

from __future__ import annotations


async def test_recorder_writes_pins_in_batches_and_in_order() -> None:
    from controller.scan_recorder import ScanRecorder

    writes: list[object] = []

    class NoObservations:
        async def record(self, batch: object) -> None:
            writes.append(("record", batch))

    async def pins(batch: object) -> None:
        writes.append(("pins", list(batch)))  # type: ignore[call-overload]

    async def pending(serial: str, kind: str, value: str) -> None:
        writes.append(("pending", serial, kind, value))

    async with ScanRecorder(
        NoObservations(),  # type: ignore[arg-type]
        interval=60,
        pin_writer=pins,
        pending_writer=pending,
    ) as recorder:
        await recorder.pin("S1", "tls", "sha256:a")
        await recorder.pin("S2", "ssh", "ssh-ed25519 AAAA")
        await recorder.pending_pin("S1", "tls", "sha256:b")
        await recorder.pin("S3", "tls", "sha256:c")
    assert writes == [
        ("pins", [("S1", "tls", "sha256:a"), ("S2", "ssh", "ssh-ed25519 AAAA")]),
        ("pending", "S1", "tls", "sha256:b"),
        ("pins", [("S3", "tls", "sha256:c")]),
    ]
