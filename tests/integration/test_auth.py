"""The secured edge against the real gateway process: TLS with a certificate made here, a
bearer token, health on its own plaintext port for probes. Only what the gateway needs runs
(the real broker, its topics, the gateway): the accepted call is a real GetPiece that passes
the token check and reaches the piece store (NOT_FOUND for a piece that does not exist)."""

from __future__ import annotations

import datetime
import ipaddress
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import SecretStr

from cantus.cli.compose import open_channel
from cantus.security import channel_credentials
from cantus.settings import Settings
from cantus.stack import Stack, free_ports
from cantus.v1 import composer_pb2 as api
from cantus.v1 import composer_pb2_grpc as api_grpc

from .conftest import stack_environment

pytestmark = pytest.mark.integration

TOKEN = "integration-token-" + uuid.uuid4().hex


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, valid for a day, and its key (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cantus-gateway-test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "tls.crt", folder / "tls.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


@pytest.fixture(scope="module")
def secured_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    state_dir = tmp_path_factory.mktemp("cantus-auth")
    cert, key = self_signed_certificate(state_dir)
    tokens_file = state_dir / "tokens"
    tokens_file.write_text(f"# accepted bearer tokens\n{TOKEN}\n")
    (health_port,) = free_ports(1)
    saved = dict(os.environ)
    os.environ.update(stack_environment(state_dir))
    os.environ.update(
        {
            "CANTUS_GATEWAY_TLS_CERT": str(cert),
            "CANTUS_GATEWAY_TLS_KEY": str(key),
            "CANTUS_GATEWAY_AUTH_TOKENS_FILE": str(tokens_file),
            "CANTUS_GATEWAY_REQUIRE_AUTH": "true",
            "CANTUS_GATEWAY_HEALTH_PORT": str(health_port),
        }
    )
    stack = Stack(Settings())
    try:
        stack.start_broker()
        stack.create_topics()
        stack.start_gateway()
        yield stack.settings
    finally:
        stack.down()
        os.environ.clear()
        os.environ.update(saved)


def _get_piece(settings: Settings, credentials: grpc.ChannelCredentials) -> grpc.StatusCode:
    address = f"localhost:{settings.gateway_port}"
    with grpc.secure_channel(address, credentials) as channel:
        try:
            api_grpc.ComposerStub(channel).GetPiece(
                api.GetPieceRequest(piece_id=uuid.uuid4().hex), timeout=10
            )
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


def test_rejected_and_accepted_tokens(secured_gateway: Settings) -> None:
    ca = secured_gateway.gateway_tls_cert.read_bytes()
    assert _get_piece(secured_gateway, channel_credentials(ca)) == grpc.StatusCode.UNAUTHENTICATED
    wrong = channel_credentials(ca, token="wrong-token-" + uuid.uuid4().hex)
    assert _get_piece(secured_gateway, wrong) == grpc.StatusCode.UNAUTHENTICATED
    # accepted: the call reaches GetPiece, which looks in the piece store and finds nothing
    assert _get_piece(secured_gateway, channel_credentials(ca, TOKEN)) == grpc.StatusCode.NOT_FOUND


def test_plaintext_is_refused_on_the_tls_port(secured_gateway: Settings) -> None:
    address = f"127.0.0.1:{secured_gateway.gateway_port}"
    with grpc.insecure_channel(address) as channel, pytest.raises(grpc.RpcError) as error:
        api_grpc.ComposerStub(channel).GetPiece(
            api.GetPieceRequest(piece_id=uuid.uuid4().hex),
            metadata=(("authorization", f"Bearer {TOKEN}"),),
            timeout=5,
        )
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE


def test_health_answers_probes_without_tls_or_token(secured_gateway: Settings) -> None:
    address = f"127.0.0.1:{secured_gateway.gateway_health_port}"
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_cantus_clients_connect_with_client_settings(secured_gateway: Settings) -> None:
    """`cantus compose` and the benchmarks open their channel with ``open_channel``: given
    the CA and a token in the client settings they pass TLS and the token check."""
    client = secured_gateway.model_copy(
        update={
            "gateway_client_ca": secured_gateway.gateway_tls_cert,
            "gateway_client_token": SecretStr(TOKEN),
        }
    )
    address = f"localhost:{secured_gateway.gateway_port}"
    with open_channel(address, client) as channel, pytest.raises(grpc.RpcError) as error:
        api_grpc.ComposerStub(channel).GetPiece(
            api.GetPieceRequest(piece_id=uuid.uuid4().hex), timeout=10
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def _http_status(settings: Settings, path: str, headers: dict[str, str] | None = None) -> int:
    import ssl
    import urllib.error
    import urllib.request

    tls = ssl.create_default_context(cafile=str(settings.gateway_tls_cert))
    url = f"https://localhost:{settings.gateway_http_port}{path}"
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers or {}), timeout=10, context=tls
        ) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code


def test_http_side_asks_for_the_same_token_over_tls(secured_gateway: Settings) -> None:
    assert _http_status(secured_gateway, "/stations") == 401
    wrong = {"Authorization": "Bearer wrong-token-" + uuid.uuid4().hex}
    assert _http_status(secured_gateway, "/stations", wrong) == 401
    assert _http_status(secured_gateway, "/stations", {"Authorization": f"Bearer {TOKEN}"}) == 200
    # players that cannot set headers pass it in the query; the page itself needs none
    assert _http_status(secured_gateway, f"/stations/none/playlist.json?token={TOKEN}") == 404
    assert _http_status(secured_gateway, "/") == 200
