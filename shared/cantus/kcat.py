"""Standard Kafka tools against the embedded broker: ``cantus kcat`` (#22).

Why plain ``kcat -b 127.0.0.1:19092 -L`` fails: Tansu answers ApiVersions v3 with four tagged
fields in the response's tag buffer (SupportedFeatures, FinalizedFeaturesEpoch (8 bytes),
FinalizedFeatures, ZkMigrationReady), which the protocol allows. librdkafka before 2.2 skipped a
tagged field's length minus one byte (librdkafka PR #4278 fixed it), so it reads the epoch's
bytes as a tag and a length of 2^57 + 2^56 - 2 bytes, and gives up with "Read underflow"
(``debug=protocol``: "expected 216172782113783806 bytes > 5 remaining"). Debian 12's kcat links
the system librdkafka 2.0.2, which has that bug; ``api.version.request=false`` and
``broker.version.fallback`` do not help, because this kcat still sends the request.

The route: the confluent-kafka wheel (PyPI) carries a current librdkafka, which reads the reply
right; ``cantus kcat`` runs the system kcat with that library preloaded (and the stack's broker
as ``-b`` unless one is given). Python clients use confluent-kafka directly.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MIN_LIBRDKAFKA = (2, 2)
"""The first librdkafka that skips tagged fields right (PR #4278)."""


class KcatUnavailable(RuntimeError):
    """kcat or a recent enough librdkafka is missing; the message says which and how to add it."""


def librdkafka_path() -> Path:
    """The librdkafka shared library in the confluent-kafka wheel."""
    try:
        import confluent_kafka
    except ImportError:
        raise KcatUnavailable(
            "confluent-kafka is not installed (pip install 'confluent-kafka>=2.2'): it carries "
            "the librdkafka that reads Tansu's replies"
        ) from None
    version = tuple(int(part) for part in confluent_kafka.libversion()[0].split(".")[:2])
    if version < MIN_LIBRDKAFKA:
        raise KcatUnavailable(
            f"confluent-kafka's librdkafka {confluent_kafka.libversion()[0]} is older than 2.2"
        )
    package = Path(confluent_kafka.__file__).parent
    for folder in (package.parent / "confluent_kafka.libs", package):
        found = sorted(folder.glob("librdkafka*.so*"))
        if found:
            return found[0]
    raise KcatUnavailable(
        f"no librdkafka*.so in {package.parent / 'confluent_kafka.libs'} (a confluent-kafka "
        "built against the system library: install the wheel from PyPI)"
    )


def kcat_command(args: list[str], broker: str) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that run the system kcat with the wheel's librdkafka;
    ``-b broker`` is added unless ``args`` name brokers themselves."""
    binary = shutil.which("kcat") or shutil.which("kafkacat")
    if binary is None:
        raise KcatUnavailable("kcat is not installed (Debian: apt-get install kcat)")
    env = dict(os.environ)
    env["LD_PRELOAD"] = os.pathsep.join(
        p for p in (str(librdkafka_path()), env.get("LD_PRELOAD", "")) if p
    )
    names_brokers = any(a == "-b" or a.startswith("-b") or a == "--brokers" for a in args)
    return [binary, *([] if names_brokers else ["-b", broker]), *args], env
