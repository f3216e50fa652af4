"""The store's asyncio engine comes without SQLAlchemy's ORM (start-up, issue 11), and the rest
of `sqlalchemy.ext.asyncio` still works in the same process when something asks for it."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_fresh(code: str) -> str:
    """`code` in a new interpreter (this one has long imported everything); its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


def test_the_engine_is_imported_without_the_orm_and_the_orm_parts_load_on_demand() -> None:
    out = run_fresh(
        """
        import sys
        from inventory.async_engine import AsyncConnection, AsyncEngine, create_async_engine
        print("orm" if "sqlalchemy.orm" in sys.modules else "no orm")
        from sqlalchemy.ext.asyncio import AsyncEngine as Public, AsyncSession
        import sqlalchemy.ext.asyncio as package
        print(Public is AsyncEngine, package.AsyncConnection is AsyncConnection)
        print(AsyncSession.__module__, "sqlalchemy.orm" in sys.modules)
        try:
            package.no_such_name
        except AttributeError as exc:
            print(exc)
        """
    )
    assert out.splitlines() == [
        "no orm",
        "True True",
        "sqlalchemy.ext.asyncio.session True",
        "module 'sqlalchemy.ext.asyncio' has no attribute 'no_such_name'",
    ]


def test_a_package_imported_before_is_used_as_it_is() -> None:
    out = run_fresh(
        """
        import sqlalchemy.ext.asyncio as package
        from inventory.async_engine import AsyncEngine
        print(package.AsyncEngine is AsyncEngine, hasattr(package, "AsyncSession"))
        """
    )
    assert out == "True True"
