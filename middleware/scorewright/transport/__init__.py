"""Transports: ZMQ (ROUTER + PUB), framed TCP, and the shared-memory ring."""
