"""Security settings: what a half or wrong configuration says, and the options every Kafka
client and the gateway's edge get from them."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest
from pydantic import ValidationError

from cantus.security import (
    SecurityConfigError,
    check_gateway_edge,
    faust_credentials,
    gateway_server_credentials,
    gateway_tokens,
    kafka_client_options,
)
from cantus.settings import Settings

TOKEN = "s3cret-token-0123456789"


def test_plaintext_by_default() -> None:
    settings = Settings()
    assert kafka_client_options(settings) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(settings) is None
    assert gateway_tokens(settings) == []
    assert gateway_server_credentials(settings) is None
    check_gateway_edge(settings)  # nothing required in the embedded stack


def test_sasl_ssl_options(tmp_path: Path) -> None:
    settings = Settings(
        kafka_security_protocol="sasl_ssl",
        kafka_sasl_mechanism="scram-sha-512",
        kafka_sasl_username="cantus",
        kafka_sasl_password="pw",
    )
    options = kafka_client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "cantus"
    assert options["sasl_plain_password"] == "pw"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-512"


def test_sasl_plaintext_has_no_tls() -> None:
    settings = Settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="u",
        kafka_sasl_password="p",
    )
    assert "ssl_context" not in kafka_client_options(settings)
    assert faust_credentials(settings).protocol.value == "SASL_PLAINTEXT"


def test_ssl_with_missing_ca_names_the_setting(tmp_path: Path) -> None:
    settings = Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=tmp_path / "nope.crt")
    with pytest.raises(SecurityConfigError, match="kafka_ssl_cafile"):
        kafka_client_options(settings)


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"kafka_security_protocol": "TLS"}, "kafka_security_protocol"),
        ({"kafka_sasl_mechanism": "GSSAPI"}, "kafka_sasl_mechanism"),
        ({"kafka_security_protocol": "SASL_SSL"}, "kafka_sasl_username"),
        ({"gateway_tls_cert": "/x.crt"}, "gateway_tls_key"),
        ({"kafka_ssl_certfile": "/c.crt"}, "kafka_ssl_keyfile"),
    ],
)
def test_invalid_settings_name_the_problem(values: dict, named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        Settings(**values)


def test_tokens_from_setting_and_file(tmp_path: Path) -> None:
    tokens_file = tmp_path / "tokens"
    tokens_file.write_text("# rotated 2026-11\nold-token-abcdefghijkl\n\nnew-token-abcdefghijkl\n")
    settings = Settings(gateway_auth_token=TOKEN, gateway_auth_tokens_file=tokens_file)
    assert gateway_tokens(settings) == [
        TOKEN.encode(),
        b"old-token-abcdefghijkl",
        b"new-token-abcdefghijkl",
    ]


def test_empty_tokens_file_and_short_tokens_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "tokens"
    empty.write_text("# nothing yet\n")
    with pytest.raises(SecurityConfigError, match="holds no token"):
        gateway_tokens(Settings(gateway_auth_tokens_file=empty))
    with pytest.raises(SecurityConfigError, match="16 characters"):
        gateway_tokens(Settings(gateway_auth_token="short"))


def test_require_auth_says_what_is_missing() -> None:
    with pytest.raises(SecurityConfigError, match=r"bearer token.*TLS"):
        check_gateway_edge(Settings(gateway_require_auth=True))
    with pytest.raises(SecurityConfigError, match="TLS") as error:
        check_gateway_edge(Settings(gateway_require_auth=True, gateway_auth_token=TOKEN))
    assert "bearer" not in str(error.value)


def test_unreadable_tls_files_name_the_setting(tmp_path: Path) -> None:
    settings = Settings(gateway_tls_cert=tmp_path / "a.crt", gateway_tls_key=tmp_path / "a.key")
    with pytest.raises(SecurityConfigError, match="gateway_tls_cert"):
        gateway_server_credentials(settings)
