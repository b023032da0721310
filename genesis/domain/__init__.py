"""Pure domain: no asyncio, no database, no logging."""
