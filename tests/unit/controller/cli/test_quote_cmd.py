"""`polyfleet quote` to a pipe is written without rich, in the bytes rich writes there."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import date
from decimal import Decimal

import pytest

from controller.cli.console import data_console
from controller.cli.context import CliContext
from controller.cli.quote_cmd import _quote_parts, _show_rich, show_quote
from controller.eligibility import Holiday, Quote, RuleResult

ELIGIBLE = Quote(
    serial="HB00000226",
    mac="0004f20000e2",
    model="Group Series 500",
    product_group=None,
    site="site-026",
    feature=None,
    on=date(2026, 12, 6),
    eligible=True,
    rules=[
        RuleResult(name="registered", passed=True, reason="serial HB00000226 is in the inventory"),
        RuleResult(name="contract", passed=True, reason="C-1 covers it; site \x1b[5m blinks"),
    ],
    contract="C-1",
    contract_kind=None,
    contract_end=date(2027, 12, 31),
    pricing=None,
    fee=Decimal("49.00"),
    fee_effective=date(2024, 1, 1),
    currency="USD",
    ppi_fee=Decimal("150.00"),
    ppi_fee_effective=date(2008, 11, 3),
    sla_business_days=2,
    sla_country="US",
    sla_due=date(2026, 12, 8),
    sla_holidays=[Holiday(date=date(2026, 12, 7), name="Day \u00e9t\u00e9")],
    notes=["two\nlines ", "a note with a trailing space "],
    policy="<built-in default policy>",
)
INELIGIBLE = ELIGIBLE.model_copy(
    update={
        "eligible": False,
        "rules": [RuleResult(name="contract", passed=False, reason="no contract " + "x" * 200)],
        "ppi_fee": None,
    }
)
NARROW_INELIGIBLE = INELIGIBLE.model_copy(
    update={"rules": [RuleResult(name="contract", passed=False, reason="no contract")]}
)


def through_rich(result: Quote) -> str:
    buffer = io.StringIO()
    _show_rich(data_console(buffer), *_quote_parts(result))
    return buffer.getvalue()


@pytest.mark.parametrize("result", [ELIGIBLE, INELIGIBLE, NARROW_INELIGIBLE])
def test_a_pipe_gets_what_rich_writes(
    result: Quote, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("TTY_COMPATIBLE", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    show_quote(CliContext(), result)
    assert capsys.readouterr().out == through_rich(result)


def test_quote_to_a_pipe_does_not_import_rich() -> None:
    code = (
        "import sys\n"
        "from controller.cli.context import CliContext\n"
        "from controller.cli.quote_cmd import show_quote\n"
        "from controller.eligibility import Quote\n"
        "show_quote(CliContext(), Quote.model_validate_json(sys.argv[1]))\n"
        "assert not [m for m in sys.modules if m.startswith('rich')], 'rich imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, NARROW_INELIGIBLE.model_dump_json()],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == through_rich(NARROW_INELIGIBLE)
