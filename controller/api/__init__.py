"""The controller's HTTP API (`polyfleet serve`): aiohttp routes over the use cases and store."""
