"""Security settings turned into what the libraries take: gRPC server and channel credentials
and bearer tokens for the gateway's edge, SASL/SSL options for every Kafka client.

The embedded stack runs with none of it (plaintext on 127.0.0.1); the production overlay in
``deploy/k8s`` turns on TLS and tokens at the gateway and SASL_SSL towards Kafka. Every Kafka
client (Faust apps, the gateway's aiokafka producer and consumer, the topic admin, tools)
takes its options from ``kafka_client_options`` so that one setting reaches all of them.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from cantus.settings import Settings


class SecurityConfigError(ValueError):
    """A security setting points at something missing or unusable; the message says which."""


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise SecurityConfigError(f"{setting}: cannot read {path}: {error.strerror}") from None


# --- the gateway's edge ----------------------------------------------------------------------


def gateway_tokens(settings: Settings) -> list[bytes]:
    """The bearer tokens the gateway accepts (empty: no token check).

    From ``gateway_auth_token`` and ``gateway_auth_tokens_file`` (one token a line, blank
    lines and ``#`` comments ignored), so a Secret can hold several tokens while clients
    move from an old one to a new one.
    """
    tokens: list[bytes] = []
    if settings.gateway_auth_token is not None:
        tokens.append(settings.gateway_auth_token.get_secret_value().strip().encode())
    if settings.gateway_auth_tokens_file is not None:
        text = _read(settings.gateway_auth_tokens_file, "gateway_auth_tokens_file").decode()
        lines = [line.strip() for line in text.splitlines()]
        from_file = [line.encode() for line in lines if line and not line.startswith("#")]
        if not from_file:
            raise SecurityConfigError(
                f"gateway_auth_tokens_file: {settings.gateway_auth_tokens_file} holds no token"
            )
        tokens.extend(from_file)
    if any(len(token) < 16 for token in tokens):
        raise SecurityConfigError("gateway auth tokens must be at least 16 characters long")
    return tokens


def gateway_server_credentials(settings: Settings):  # -> grpc.ServerCredentials | None
    """TLS credentials for the gateway's port, or None to serve plaintext."""
    if settings.gateway_tls_cert is None or settings.gateway_tls_key is None:
        return None
    import grpc

    chain = _read(settings.gateway_tls_cert, "gateway_tls_cert")
    key = _read(settings.gateway_tls_key, "gateway_tls_key")
    return grpc.ssl_server_credentials([(key, chain)])


def check_gateway_edge(settings: Settings) -> None:
    """Fail at start-up when the edge must be secured (``gateway_require_auth``) but is not."""
    tokens = gateway_tokens(settings)
    if settings.gateway_require_auth:
        missing = []
        if not tokens:
            missing.append("a bearer token (gateway_auth_token or gateway_auth_tokens_file)")
        if settings.gateway_tls_cert is None:
            missing.append("TLS (gateway_tls_cert and gateway_tls_key)")
        if missing:
            raise SecurityConfigError(
                "gateway_require_auth is set but " + " and ".join(missing) + " is not configured"
            )


def channel_credentials(root_certificates: bytes | None = None, token: str | None = None):
    """Client-side credentials for a TLS channel to the gateway, sending ``token`` as a
    bearer token with every call (for clients, tests and tools)."""
    import grpc

    credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
    if token is None:
        return credentials
    return grpc.composite_channel_credentials(
        credentials, grpc.access_token_call_credentials(token)
    )


# --- Kafka clients ---------------------------------------------------------------------------


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context towards the brokers (SSL and SASL_SSL), else None."""
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if settings.kafka_ssl_cafile is not None:
        _read(settings.kafka_ssl_cafile, "kafka_ssl_cafile")  # a clear error, not ssl's
        context.load_verify_locations(cafile=str(settings.kafka_ssl_cafile))
    if settings.kafka_ssl_certfile is not None and settings.kafka_ssl_keyfile is not None:
        _read(settings.kafka_ssl_certfile, "kafka_ssl_certfile")
        _read(settings.kafka_ssl_keyfile, "kafka_ssl_keyfile")
        context.load_cert_chain(str(settings.kafka_ssl_certfile), str(settings.kafka_ssl_keyfile))
    return context


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    context = kafka_ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if protocol.startswith("SASL_"):
        assert settings.kafka_sasl_password is not None  # Settings checks SASL is complete
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password.get_secret_value(),
        )
    return options


def faust_credentials(settings: Settings):  # -> faust.types.auth.CredentialsT | None
    """The same settings as Faust's ``broker_credentials`` (None: plaintext)."""
    import faust

    protocol = settings.kafka_security_protocol
    context = kafka_ssl_context(settings)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    if protocol.startswith("SASL_"):
        assert settings.kafka_sasl_password is not None
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            ssl_context=context,  # set: SASL_SSL, None: SASL_PLAINTEXT
            mechanism=settings.kafka_sasl_mechanism,
        )
    return None
