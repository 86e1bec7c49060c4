"""The HTTP edge: thin handlers over the ledger; health checks for now."""
