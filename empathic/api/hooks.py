"""/hooks/{channel}/{kind}: where HTTP providers (Twilio, Vonage) call us.

No API key here: the channel checks the provider's signature over the URL it called, which
is the public one (`EMPATHIC_PUBLIC_URL` + path) when set, else the URL the request came to.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response

from empathic.engine.runtime import runtime_of
from empathic.channels.base import WebhookRequest

router = APIRouter(prefix="/hooks", tags=["provider webhooks"])


def _public_url(request: Request) -> str:
    public = runtime_of(request).settings.public_url
    if not public:
        return str(request.url)
    url = public.rstrip("/") + request.url.path
    return f"{url}?{request.url.query}" if request.url.query else url


@router.api_route("/{channel}/{kind}", methods=["GET", "POST"], include_in_schema=False)
async def provider_webhook(channel: str, kind: str, request: Request) -> Response:
    rt = runtime_of(request)
    target = rt.channels.by_name.get(channel)
    if target is None or not hasattr(target, "webhook"):
        raise HTTPException(404, f"no channel {channel!r} takes webhooks")
    call = WebhookRequest(
        method=request.method,
        url=_public_url(request),
        headers={k.lower(): v for k, v in request.headers.items()},
        query=dict(request.query_params),
        body=await request.body(),
        content_type=request.headers.get("content-type", ""),
    )
    answer = await target.webhook(kind, call, rt)
    return Response(answer.body, status_code=answer.status, media_type=answer.content_type)
