"""Signs checkpoints while logs grow: every interval, each community whose log has
new entries gets its tree extended and a new signed checkpoint. Any number of
processes may run it; one at a time works on a community."""

from __future__ import annotations

import asyncio

import structlog

from timebank.ledger.errors import DatabaseUnavailable
from timebank.log.store import LogStore

logger = structlog.get_logger(__name__)


async def checkpoint_all(log: LogStore) -> int:
    """Checkpoints every community that is behind; returns how many it signed."""
    signed = 0
    for community_id, slug in await log.communities_behind():
        checkpoint = await log.checkpoint(community_id, slug)
        if checkpoint is not None:
            signed += 1
            logger.debug("checkpoint_signed", community=slug, tree_size=checkpoint.tree_size)
    return signed


async def checkpoint_forever(log: LogStore, interval_s: float) -> None:
    while True:
        try:
            await checkpoint_all(log)
        except DatabaseUnavailable as error:
            logger.warning("checkpoint_failed", error=str(error))
        except Exception:
            # A bug must not stop checkpoints for good: log it and try again later.
            logger.exception("checkpointer_crashed")
        await asyncio.sleep(interval_s)
