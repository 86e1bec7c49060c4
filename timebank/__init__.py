"""Timebank: a double-entry ledger of hours and local-currency credits."""

__version__ = "0.1.0"
