"""Webhooks: subscriptions, the outbox the database fills in the same transaction as
each change, and the worker that delivers it."""
