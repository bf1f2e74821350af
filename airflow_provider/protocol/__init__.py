"""Pure protocol code (no I/O): URLs, size decisions, status mapping. Both hooks call it."""
