"""SQLAlchemy's asyncio engine without its ORM: polyfleet's one import of `sqlalchemy.ext.asyncio`.

polyfleet uses the Core engine only (`AsyncEngine`, `AsyncConnection`), but the package
`__init__` of `sqlalchemy.ext.asyncio` imports `AsyncSession` and with it the whole ORM: about
50 ms of CPU, an eighth of `polyfleet health` (issue 11, bench/startup_bench.py). Importing this
module registers that package without running its `__init__` and puts the names of its engine
and result modules on it, as the `__init__` would. The first time anything asks the package for
another name (an ORM session, in a test or a plugin), the real `__init__` runs, so
`from sqlalchemy.ext.asyncio import AsyncSession` still works in the same process. If the package
was imported before, it is used as it is.

ruff (TID251) keeps the rest of the tree importing these names from here.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any

_PACKAGE = "sqlalchemy.ext.asyncio"
_ENGINE_NAMES = (
    "AsyncConnection",
    "AsyncEngine",
    "AsyncTransaction",
    "async_engine_from_config",
    "create_async_engine",
    "create_async_pool_from_url",
)
_RESULT_NAMES = ("AsyncMappingResult", "AsyncResult", "AsyncScalarResult", "AsyncTupleResult")


def _register_without_orm() -> None:
    """Put `sqlalchemy.ext.asyncio` in sys.modules with its engine names, its `__init__`
    deferred to the first look-up of any other name."""
    if _PACKAGE in sys.modules:
        return
    import sqlalchemy.ext
    from sqlalchemy.util import concurrency

    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or spec.loader is None:  # sqlalchemy[asyncio] is a dependency
        raise ImportError(f"{_PACKAGE} not found")
    loader = spec.loader
    package = importlib.util.module_from_spec(spec)
    deferred: list[bool] = []  # empty while the engine modules load, and once `__init__` ran

    def complete(name: str) -> Any:
        """PEP 562 fallback: run the package's own `__init__` once, then look again. Not while
        the engine modules load: their `from . import exc` asks the package first."""
        if deferred:
            deferred.clear()
            loader.exec_module(package)
            if name in package.__dict__:
                return package.__dict__[name]
        raise AttributeError(f"module {_PACKAGE!r} has no attribute {name!r}")

    package.__getattr__ = complete  # type: ignore[method-assign]
    sys.modules[_PACKAGE] = package
    sqlalchemy.ext.asyncio = package
    try:
        engine = importlib.import_module(f"{_PACKAGE}.engine")
        result = importlib.import_module(f"{_PACKAGE}.result")
    except BaseException:
        del sys.modules[_PACKAGE]
        raise
    _copy(engine, package, _ENGINE_NAMES)
    _copy(result, package, _RESULT_NAMES)
    deferred.append(True)
    concurrency._concurrency_shim._initialize()  # what the package's `__init__` ends with


def _copy(source: ModuleType, target: ModuleType, names: tuple[str, ...]) -> None:
    for name in names:
        setattr(target, name, getattr(source, name))


_register_without_orm()

from sqlalchemy.ext.asyncio.engine import (  # noqa: E402  (after the package is registered)
    AsyncConnection as AsyncConnection,
)
from sqlalchemy.ext.asyncio.engine import AsyncEngine as AsyncEngine  # noqa: E402
from sqlalchemy.ext.asyncio.engine import create_async_engine as create_async_engine  # noqa: E402
