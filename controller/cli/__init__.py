"""The `polyfleet` command line (typer): the only place that calls asyncio.run."""
