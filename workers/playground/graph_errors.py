"""Graph API error answers as Meta shapes them, for the stand-in."""

from __future__ import annotations


def error(code: int, message: str, kind: str, subcode: int | None = None) -> dict:
    """`{"error": {...}}` with Meta's fields, a trace id included."""
    body: dict = {"message": message, "type": kind, "code": code, "fbtrace_id": "AFakeTrace"}
    if subcode is not None:
        body["error_subcode"] = subcode
    return {"error": body}


def no_object(object_id: str) -> tuple[int, dict]:
    """What Meta answers for an id it does not know, or may not show (code 100, subcode 33)."""
    message = (f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be "
               "loaded due to missing permissions, or does not support this operation")
    return 400, error(100, message, "GraphMethodException", 33)


def token_refusal(*, invalid: bool, expired: bool) -> tuple[int, dict] | None:
    """Code 190 for a token Meta does not take (subcode 460: invalidated; 463: expired)."""
    if invalid:
        return 400, error(190, "Error validating access token: The session has been invalidated.",
                          "OAuthException", 460)
    if expired:
        return 400, error(190, "Error validating access token: Session has expired.", "OAuthException", 463)
    return None
