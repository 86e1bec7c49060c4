"""Webhook subscriptions and their delivery log."""

from __future__ import annotations

from aiohttp import web

from timebank.api.context import community_actor, path_uuid
from timebank.api.contract import body_of, query_of, respond
from timebank.api.registry import api
from timebank.api.schemas import (
    DeliveryList,
    DeliveryOut,
    DeliveryQuery,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
)
from timebank.auth.access import Actor, Scope
from timebank.errors import NotFound
from timebank.keys import WEBHOOKS
from timebank.webhooks.subscriptions import Subscription

TAG = "Webhooks"


def _require_manager(actor: Actor) -> None:
    """Admins, and clients with the webhooks:manage scope."""
    if actor.is_client:
        actor.require_scope(Scope.WEBHOOKS_MANAGE)
    else:
        actor.require_admin()


def _out(subscription: Subscription) -> WebhookOut:
    return WebhookOut(
        id=subscription.id,
        url=subscription.url,
        events=list(subscription.event_types),
        created_at=subscription.created_at,
    )


@api.operation(
    "POST",
    "/v1/communities/{slug}/webhooks",
    tag=TAG,
    summary="Subscribe to events",
    body=WebhookCreate,
    responses={201: WebhookCreated},
)
async def create_webhook(request: web.Request) -> web.Response:
    """Events of these types are POSTed to the URL, one at a time and in order,
    each with `Timebank-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
    "<t>.<body>" with the secret>`; failures are retried with exponential backoff.
    The secret is in this answer only."""
    community, actor = await community_actor(request, request.match_info["slug"])
    _require_manager(actor)
    body = body_of(request, WebhookCreate)
    subscription, secret = await request.app[WEBHOOKS].create(community.id, body.url, body.events)
    created = WebhookCreated(**_out(subscription).model_dump(), secret=secret)
    return respond(created, 201, **{"Cache-Control": "no-store"})


@api.operation(
    "GET",
    "/v1/communities/{slug}/webhooks",
    tag=TAG,
    summary="The community's subscriptions",
    responses={200: WebhookList},
)
async def list_webhooks(request: web.Request) -> web.Response:
    """Live subscriptions, without their secrets."""
    community, actor = await community_actor(request, request.match_info["slug"])
    _require_manager(actor)
    subscriptions = await request.app[WEBHOOKS].active(community.id)
    return respond(WebhookList(items=[_out(item) for item in subscriptions]))


@api.operation(
    "DELETE",
    "/v1/communities/{slug}/webhooks/{subscription_id}",
    tag=TAG,
    summary="Unsubscribe",
    responses={204: None},
)
async def delete_webhook(request: web.Request) -> web.Response:
    """Stops deliveries at once; the delivery log stays readable."""
    community, actor = await community_actor(request, request.match_info["slug"])
    _require_manager(actor)
    subscription_id = path_uuid(request, "subscription_id")
    if not await request.app[WEBHOOKS].delete(community.id, subscription_id):
        raise NotFound(f"no subscription {subscription_id} in this community")
    return web.Response(status=204)


@api.operation(
    "GET",
    "/v1/communities/{slug}/webhooks/{subscription_id}/deliveries",
    tag=TAG,
    summary="A subscription's delivery log",
    query=DeliveryQuery,
    responses={200: DeliveryList},
)
async def list_deliveries(request: web.Request) -> web.Response:
    """Newest first: each event's state, attempts and the last answer or error."""
    community, actor = await community_actor(request, request.match_info["slug"])
    _require_manager(actor)
    subscription_id = path_uuid(request, "subscription_id")
    webhooks = request.app[WEBHOOKS]
    if await webhooks.get(community.id, subscription_id) is None:
        raise NotFound(f"no subscription {subscription_id} in this community")
    query = query_of(request, DeliveryQuery)
    deliveries = await webhooks.deliveries(community.id, subscription_id, query.limit)
    return respond(
        DeliveryList(
            items=[
                DeliveryOut(
                    event_id=item.event_id,
                    type=item.type,
                    state=item.state,
                    attempts=item.attempts,
                    last_status=item.last_status,
                    last_error=item.last_error,
                    next_attempt_at=item.next_attempt_at,
                    delivered_at=item.delivered_at,
                )
                for item in deliveries
            ]
        )
    )
