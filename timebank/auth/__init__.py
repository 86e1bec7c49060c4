"""Identities, roles, tokens and keys (the HTTP API issue builds them here)."""
