"""The fleet dashboard: static pages served by `polyfleet serve` at `/`, talking to `/api/v1`.

The assets ship inside the package (`static/`), are plain ES modules (no build step, nothing
fetched from the internet) and are read once at start-up, so only files that shipped are served.
"""

from __future__ import annotations

from controller.dashboard.assets import add_dashboard_routes

__all__ = ["add_dashboard_routes"]
