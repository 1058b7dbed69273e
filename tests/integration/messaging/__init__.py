"""Integration tests of the Redis Streams messaging on the real Redis (and PostgreSQL)."""
