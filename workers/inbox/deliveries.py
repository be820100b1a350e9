"""What an operator sees of the deliveries a web node recorded, and replaying them."""

from __future__ import annotations

import json
from dataclasses import dataclass

from workers.crypto import Codec
from workers.errors import AdminError
from workers.inbox.database import Inbox
from workers.inbox.schema import Delivery


@dataclass(frozen=True)
class DeliveryInfo:
    """What an operator sees of one recorded delivery; the body only on request."""

    id: int
    received_at: float
    size: int
    published_at: float | None
    force: bool
    object: str | None
    entries: int | None
    body: bytes | None = None
    failed_at: float | None = None
    error: str | None = None
    api_version: str | None = None  # the delivery's Facebook-API-Version header

    @property
    def published(self) -> bool:
        """Whether the relay has handed it to the broker."""
        return self.published_at is not None


def describe_delivery(delivery: Delivery, codec: Codec, *, with_body: bool = False) -> DeliveryInfo:
    """Summarise a delivery: size, envelope `object` and entry count, parsed from the body."""
    body = codec.open(delivery.body, what=f"delivery {delivery.id}")
    kind, entries = _envelope_shape(body)
    return DeliveryInfo(id=delivery.id, received_at=delivery.received_at, size=len(body),
                        published_at=delivery.published_at, force=delivery.force, object=kind,
                        entries=entries, body=body if with_body else None,
                        failed_at=delivery.failed_at, error=delivery.error,
                        api_version=delivery.api_version)


def _envelope_shape(body: bytes) -> tuple[str | None, int | None]:
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(envelope, dict):
        return None, None
    kind, entry = envelope.get("object"), envelope.get("entry")
    return (kind if isinstance(kind, str) else None,
            len(entry) if isinstance(entry, list) else None)


def list_deliveries(inbox: Inbox, codec: Codec, *, limit: int = 50, since: float | None = None,
                    failed: bool = False, with_body: bool = False) -> list[DeliveryInfo]:
    """The newest recorded deliveries first (only those that failed, if `failed`)."""
    found = inbox.list(limit=limit, since=since, failed=failed)
    return [describe_delivery(d, codec, with_body=with_body) for d in found]


def replay_delivery(inbox: Inbox, delivery_id: int) -> int:
    """Record a delivery's body again (with its API version), forced through to every handler;
    returns the new id."""
    delivery = inbox.get(delivery_id)
    if delivery is None:
        raise AdminError(f"no delivery {delivery_id} in the inbox")
    return inbox.append_many([delivery.body], force=True, replaying=delivery_id,
                             api_versions=[delivery.api_version])[0]
