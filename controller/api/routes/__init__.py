"""Route modules of the API; each has a module-level `routes` listed in app.ROUTE_MODULES."""
