"""The gateway's bearer-token check: a gRPC server interceptor.

Every call must carry ``authorization: Bearer <token>`` metadata with one of the configured
tokens (``cantus.security.gateway_tokens``), else it ends with UNAUTHENTICATED before the
method runs. The health service is exempt: load balancers and kubelet gRPC probes send no
metadata, and health reveals nothing but SERVING / NOT_SERVING. Reflection is not exempt,
since it describes the API to whoever asks.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable, Sequence

import grpc
from prometheus_client import Counter

HEALTH_METHOD_PREFIX = "/grpc.health.v1.Health/"
"""Methods served without a token."""

REJECTED = Counter(
    "cantus_gateway_auth_rejected_total", "Calls refused by the token check", ["reason"]
)


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> bytes | None:
    """The token of an ``authorization: Bearer <token>`` entry, or None when there is none."""
    for key, value in metadata or ():
        if key.lower() != "authorization":
            continue
        text = value.decode() if isinstance(value, bytes) else value
        scheme, _, token = text.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip().encode()
    return None


def token_accepted(token: bytes, accepted: Sequence[bytes]) -> bool:
    """Compare against every accepted token in constant time (no early exit on a match), so
    timing tells nothing about which token, or which prefix, was close."""
    matched = False
    for candidate in accepted:
        matched |= hmac.compare_digest(token, candidate)
    return matched


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    """Refuses calls without an accepted bearer token (UNAUTHENTICATED)."""

    def __init__(self, tokens: Sequence[bytes]) -> None:
        if not tokens:
            raise ValueError("BearerTokenInterceptor needs at least one token")
        self._tokens = list(tokens)

    def check(self, method: str, metadata) -> str | None:
        """Why a call to ``method`` with ``metadata`` is refused, or None if it may proceed."""
        if method.startswith(HEALTH_METHOD_PREFIX):
            return None
        token = bearer_token(metadata)
        if token is None:
            REJECTED.labels("missing").inc()
            return "missing bearer token: send metadata 'authorization: Bearer <token>'"
        if not token_accepted(token, self._tokens):
            REJECTED.labels("invalid").inc()
            return "invalid bearer token"
        return None

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        refusal = self.check(handler_call_details.method, handler_call_details.invocation_metadata)
        handler = await continuation(handler_call_details)
        if refusal is None or handler is None:
            return handler
        return _refusing(handler, refusal)


def _refusing(handler: grpc.RpcMethodHandler, reason: str) -> grpc.RpcMethodHandler:
    """A handler of the same shape as ``handler`` (so requests still deserialise and the
    client's stream ends properly) that aborts with UNAUTHENTICATED."""

    async def refuse(request_or_iterator, context: grpc.aio.ServicerContext):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, reason)

    shape = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[(handler.request_streaming, handler.response_streaming)]
    return shape(
        refuse,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
