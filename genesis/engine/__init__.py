"""The asyncio engine: execution runners, their supervisor and the daemon around them."""
