#!/usr/bin/env python3
"""The Docker test environment: what the Pulumi program declares for a spec, created on
a local Docker engine with images built here, verified, and removed.

    python scripts/docker_env.py SPEC [SPEC ...]    # per spec: up, verify, down
    python scripts/docker_env.py --keep SPEC        # up and verify; leave it running
    python scripts/docker_env.py --down SPEC        # remove what --keep left

No Pulumi engine can run where this is tested and no image can be pulled. So the
program runs under Pulumi's mocks (infra/provision/program/mocks.py) and every network, volume,
image and container it registers is created with the Docker SDK, input for input: a
declaration Docker rejects fails here, and the environment cannot drift from the
program. Only the images are built here, as stack config the program already reads:

  kafka-image          Apache Kafka of the plan's release: Debian's Java 17 and the jars
                       from Maven Central, laid out like apache/kafka (scripts/images/kafka)
  zookeeper-image      ZooKeeper 3.8.4 from Kafka 3.9's jars, entered like zookeeper:3.8.4
  consumer-base-image  a debootstrap Debian base, wheels fetched on the host

A secured spec gets a new keyring as its secret config (as `infra ci` gives an
ephemeral stack), and its users and ACLs are created through the admin API as the
Kafka provider logs in. Root filesystems are made once with debootstrap and cached in
~/.cache/kafka-log-cluster. The engine is DOCKER_HOST's, else a private dockerd started
and stopped here. The environment is removed by the teardown sweeper, by its stack label.

It is one script of about 600 lines because it is one translation, resource type by
resource type, of what the mocks recorded into Docker SDK calls (Docker's and the Kafka
provider's), plus the image builds that translation needs; it leaves the project the day
`pulumi up` runs here (issue 14).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script
    sys.path.insert(0, str(REPO))

import docker  # noqa: E402
from confluent_kafka import KafkaException  # noqa: E402
from confluent_kafka.admin import (  # noqa: E402
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from rich.console import Console  # noqa: E402

from infra.build import build  # noqa: E402
from infra.kafka.releases import RELEASES, Release  # noqa: E402
from infra.ops.stacks import CONFIG, backend_id, inventory_of, new_secrets  # noqa: E402
from infra.ops.sweeper import stacks_on, sweep  # noqa: E402
from infra.problems import InputError  # noqa: E402
from infra.provision.components.labels import PREFIX  # noqa: E402
from infra.provision.program.mocks import Run, run_program  # noqa: E402
from infra.runtime import jvm  # noqa: E402
from infra.runtime.maven import kafka_libs  # noqa: E402

MIRROR = "http://deb.debian.org/debian"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kafka-log-cluster"
# What each locally built base holds (procps: ps, for the process checks).
ROOTFS = {
    "python3": "python3,python3-venv,procps",
    "jre": "openjdk-17-jre-headless,procps",
}
IMAGES = REPO / "scripts" / "images"
TOPIC_TIMEOUT_S = 30
# The environment's stacks live in no Pulumi backend: its label says so, so that a
# sweep by `make up`'s backend leaves them, and its own teardown takes them.
BACKEND = backend_id("kafka-log-cluster-docker-env")

NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
IMAGE = "docker:index/image:Image"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
CONTAINER = "docker:index/container:Container"
KAFKA_PROVIDER = "pulumi:providers:kafka"
TOPIC = "kafka:index/topic:Topic"
SCRAM_USER = "kafka:index/userScramCredential:UserScramCredential"
ACL = "kafka:index/acl:Acl"
# Registrations that create nothing on the engine.
NOTHING_TO_CREATE = {
    "pulumi:providers:docker",
    KAFKA_PROVIDER,
    "kafka-log-cluster:index:KafkaCluster",
    "kafka-log-cluster:index:ZooKeeperEnsemble",
    "kafka-log-cluster:index:ConsumerDeployment",
    "pulumi:pulumi:Stack",
}


class CannotBuild(RuntimeError):
    """The environment cannot be made; the message says what and how to fix it."""


# -- the engine


@contextlib.contextmanager
def engine() -> Iterator[str]:
    """DOCKER_HOST's engine if it answers, else a private dockerd (own socket, data and
    exec roots) started here and stopped, with everything it made, on exit."""
    given = os.environ.get("DOCKER_HOST")
    if given:
        docker.DockerClient(base_url=given).ping()
        yield given
        return
    if shutil.which("dockerd") is None:
        raise CannotBuild("no dockerd: install docker.io (scripts/test-deps.sh does)")
    root = Path(tempfile.mkdtemp(prefix="klc-docker-", dir="/tmp"))  # short: a socket path
    socket = f"unix://{root}/docker.sock"
    with (root / "dockerd.log").open("w") as log:
        daemon = subprocess.Popen(
            ["dockerd", f"--host={socket}", f"--data-root={root}/data",
             f"--exec-root={root}/exec", f"--pidfile={root}/docker.pid",
             # Its own iptables rules: a host whose FORWARD policy is DROP (any
             # earlier dockerd sets it) drops container-to-container traffic otherwise.
             "--bridge=none"],
            stdout=log, stderr=log,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                docker.DockerClient(base_url=socket).ping()
                break
            except docker.errors.DockerException:
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise CannotBuild(f"dockerd did not start; see {root}/dockerd.log") from None
                time.sleep(0.3)
        yield socket
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        # dockerd leaves its network namespaces mounted under the exec root.
        mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(str(root))), reverse=True):
            subprocess.run(["umount", mount], check=False)
        shutil.rmtree(root, ignore_errors=True)


# -- images, built here


def rootfs_tar(name: str) -> Path:
    """A Debian root filesystem with ROOTFS[name], made once by debootstrap and cached
    under a name that changes with the package list."""
    packages = ROOTFS[name]
    digest = hashlib.sha256(packages.encode()).hexdigest()[:8]
    tar = CACHE / f"bookworm-{name}-{digest}.tar"
    if tar.exists():
        return tar
    if shutil.which("debootstrap") is None and not Path("/usr/sbin/debootstrap").exists():
        raise CannotBuild("no debootstrap: install it (scripts/test-deps.sh does)")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="klc-rootfs-") as root:
        made = subprocess.run(
            ["debootstrap", "--variant=minbase", "--no-merged-usr", f"--include={packages}",
             "bookworm", root, MIRROR],
            capture_output=True, text=True,
        )  # fmt: skip
        if made.returncode != 0:
            raise CannotBuild(
                f"debootstrap of {name} failed: {made.stdout[-400:]}{made.stderr[-400:]}"
            )
        partial = tar.with_suffix(".partial")
        subprocess.run(["tar", "-C", root, "--exclude=./proc/*", "-cf", str(partial), "."],
                       check=True)  # fmt: skip
        partial.replace(tar)
    return tar


def base_image(client: docker.DockerClient, name: str) -> str:
    """The cached root filesystem `name`, imported into the engine once."""
    tar = rootfs_tar(name)
    repository, tag = "kafka-log-cluster/base", tar.stem.removeprefix("bookworm-")
    if not client.images.list(name=f"{repository}:{tag}"):
        client.api.import_image(src=str(tar), repository=repository, tag=tag)
    return f"{repository}:{tag}"


def fetch_wheels() -> None:
    """The consumers' wheels, downloaded on the host into consumers/wheelhouse/
    (containers cannot reach a package index)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
         "-r", "consumers/requirements.txt", "-d", "consumers/wheelhouse"],
        cwd=REPO, check=True,
    )  # fmt: skip


def build_image(
    client: docker.DockerClient, context: Path, dockerfile: str, args: dict, tag: str
) -> str:
    try:
        client.images.build(
            path=str(context), dockerfile=dockerfile, buildargs=args, tag=tag, rm=True
        )
    except docker.errors.BuildError as err:
        log = "".join(str(line.get("stream", line.get("error", ""))) for line in err.build_log)
        raise CannotBuild(f"building {tag} failed: {err.msg}\n{log[-1500:]}") from None
    return tag


def consumers_image(client: docker.DockerClient, tag: str, args: dict) -> str:
    fetch_wheels()
    return build_image(client, REPO, "consumers/Dockerfile", args, tag)


def _start_scripts(release: Release, home: str) -> dict[str, str]:
    """The images' entry points, as infra/runtime/jvm.py starts Kafka and ZooKeeper here:
    the same classpath, flags and log config, and the variables the official images read
    (KAFKA_HEAP_OPTS and KAFKA_OPTS; ZK_SERVER_HEAP and SERVER_JVMFLAGS)."""
    log = jvm.log_flag(release, f"{home}/config/{jvm.log_config(release).name}")
    java = f"java {{heap}} {' '.join(jvm.PERFORMANCE_OPTS)} {log} -cp '{home}/libs/*'"
    header = "#!/bin/bash\n# Written by scripts/docker_env.py from infra/runtime/jvm.py.\n"
    header += "set -euo pipefail\n"
    kafka_heap = "${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G} ${KAFKA_OPTS:-}"
    zookeeper_heap = "-Xmx${ZK_SERVER_HEAP:-1000}m ${SERVER_JVMFLAGS:-}"
    return {
        "kafka-server-start.sh": header
        + f'exec {java.format(heap=kafka_heap)} {jvm.KAFKA_MAIN} "$@"\n',
        "kafka-storage.sh": header
        + f'exec {java.format(heap="-Xmx256m")} {jvm.STORAGE_TOOL} "$@"\n',
        "kafka-configs.sh": header
        + f'exec {java.format(heap="-Xmx256m")} {jvm.CONFIG_COMMAND} "$@"\n',
        "zkServer.sh": header
        + f"""config=${{2:-/conf/zoo.cfg}}
case ${{1:-}} in
    start-foreground)
        exec {java.format(heap=zookeeper_heap)} {jvm.ZOOKEEPER_MAIN} "$config" ;;
    status)  # as ZooKeeper's own script does: ask the server (srvr) for its mode
        port=$(sed -n 's/^clientPort=//p' "$config")
        exec 3<>"/dev/tcp/127.0.0.1/$port"
        printf srvr >&3
        timeout 5 cat <&3 ;;
    *) echo "usage: zkServer.sh start-foreground|status CONFIG" >&2; exit 2 ;;
esac
""",
    }


def _jvm_image(client: docker.DockerClient, kind: str, release: Release, tag: str) -> str:
    """scripts/images/<kind> with the release's jars, its start scripts and log config;
    the tag says what is inside, so an image is built once per content."""
    home = "/opt/kafka" if kind == "kafka" else "/opt/zookeeper"
    scripts = _start_scripts(release, home)
    tools = ["kafka-server-start.sh", "kafka-storage.sh", "kafka-configs.sh"]
    wanted = tools if kind == "kafka" else ["zkServer.sh"]
    libs = kafka_libs(release)
    digest = hashlib.sha256()
    for name in wanted:
        digest.update(scripts[name].encode())
    digest.update(
        (IMAGES / kind / "Dockerfile").read_bytes() + jvm.log_config(release).read_bytes()
    )
    digest.update(" ".join(sorted(p.name for p in libs.glob("*.jar"))).encode())
    tagged = f"{tag}-{digest.hexdigest()[:12]}"
    if client.images.list(name=tagged):
        return tagged
    with tempfile.TemporaryDirectory(prefix=f"klc-{kind}-") as context:
        root = Path(context)
        shutil.copy(IMAGES / kind / "Dockerfile", root / "Dockerfile")
        shutil.copytree(libs, root / "libs")
        (root / "config").mkdir()
        shutil.copy(jvm.log_config(release), root / "config")
        (root / "bin").mkdir()
        for name in wanted:
            (root / "bin" / name).write_text(scripts[name])
            (root / "bin" / name).chmod(0o755)
        args = {
            "BASE_IMAGE": base_image(client, "jre"),
            "KAFKA_VERSION": release.version,
            "ZOOKEEPER_VERSION": release.zookeeper,
        }
        return build_image(client, root, "Dockerfile", args, tagged)


def kafka_image(client: docker.DockerClient, release: Release) -> str:
    return _jvm_image(client, "kafka", release, f"kafka-log-cluster/kafka:{release.version}")


def zookeeper_image(client: docker.DockerClient) -> str:
    release = RELEASES["3.9"]  # ZooKeeper mode exists in 3.9 only; its jars carry ZooKeeper
    tag = f"kafka-log-cluster/zookeeper:{release.zookeeper}"
    return _jvm_image(client, "zookeeper", release, tag)


# -- the environment


def declare(spec: str, stack: str, client: docker.DockerClient) -> Run:
    """The program's registrations for `spec`, with the images built here and, for a
    secured plan, a new keyring as the stack's secret config (as `make up` fills it)."""
    plan = build(spec).plan  # a bad spec stops here
    secrets = {k.removeprefix(f"{CONFIG}:"): v for k, v in new_secrets(spec).items()}
    config = {
        "backend": BACKEND,
        "kafka-image": kafka_image(client, RELEASES[plan.cluster.kafka_version]),
        "consumer-base-image": base_image(client, "python3"),
        "consumer-pip-args": "--no-index",
    }
    if plan.cluster.mode == "zookeeper":
        config["zookeeper-image"] = zookeeper_image(client)
    return run_program(spec, stack=stack, secrets=secrets, **config)


def _labels(inputs: dict) -> dict[str, str]:
    return {item["label"]: item["value"] for item in inputs.get("labels", [])}


def _seconds(duration: str) -> float:
    """A pulumi-docker duration ("5s", "1m30s") in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise CannotBuild(f"cannot read the duration {duration!r}")
    return sum(float(n) * units[u] for n, u in parts)


def _uploads_tar(uploads: list[dict]) -> bytes:
    """The uploads as pulumi-docker writes them: content or contentBase64, with their
    permissions (octal) and numeric owner and group."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for upload in uploads:
            if "contentBase64" in upload:
                content = base64.b64decode(upload["contentBase64"])
            elif "source" in upload:  # a file of this machine (the JMX exporter's jar)
                content = Path(upload["source"]).read_bytes()
            else:
                content = upload["content"].encode()
            info = tarfile.TarInfo(upload["file"].lstrip("/"))
            info.size, info.mode = len(content), int(upload.get("permissions", "0644"), 8)
            info.uid = int(upload.get("owner", 0))
            info.gid = int(upload.get("group", 0))
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


# Container inputs the builder creates; any other is refused, so that a program change
# this file does not carry fails here instead of being silently left out.
CONTAINER_INPUTS = {
    "name", "hostname", "image", "command", "envs", "uploads", "volumes", "ports",
    "networksAdvanced", "labels", "healthcheck", "wait", "waitTimeout", "restart",
    "stopTimeout", "memory", "memorySwap", "cpuShares",
}  # fmt: skip


def create_container(client: docker.DockerClient, inputs: dict) -> str:
    name = inputs["name"]
    unknown = set(inputs) - CONTAINER_INPUTS
    if unknown:
        raise CannotBuild(
            f"container {name}: the program declares {', '.join(sorted(unknown))}, which "
            "scripts/docker_env.py does not create; teach create_container"
        )
    api = client.api
    ports = {int(p["internal"]): (p["ip"], int(p["external"])) for p in inputs.get("ports", [])}
    mounts = [
        docker.types.Mount(target=v["containerPath"], source=v["volumeName"], type="volume")
        for v in inputs.get("volumes", [])
    ]
    networks = inputs.get("networksAdvanced", [])
    health = inputs.get("healthcheck")
    created = api.create_container(
        inputs["image"],
        command=inputs.get("command"),
        name=name,
        hostname=inputs.get("hostname"),
        environment=inputs.get("envs"),
        labels=_labels(inputs),
        ports=list(ports),
        stop_timeout=int(inputs["stopTimeout"]) if "stopTimeout" in inputs else None,
        healthcheck=health
        and {
            "test": health["tests"],
            "interval": int(_seconds(health["interval"]) * 1e9),
            "timeout": int(_seconds(health["timeout"]) * 1e9),
            "retries": int(health["retries"]),
            "start_period": int(_seconds(health["startPeriod"]) * 1e9),
        },
        host_config=api.create_host_config(
            port_bindings=ports,
            mounts=mounts,
            restart_policy={"Name": inputs.get("restart", "no")},
            mem_limit=f"{int(inputs['memory'])}m",
            memswap_limit=f"{int(inputs['memorySwap'])}m",
            cpu_shares=int(inputs["cpuShares"]),
        ),
        networking_config=networks
        and api.create_networking_config(
            {networks[0]["name"]: api.create_endpoint_config(aliases=networks[0].get("aliases"))}
        ),
    )
    for extra in networks[1:]:
        api.connect_container_to_network(created["Id"], extra["name"], aliases=extra.get("aliases"))
    if inputs.get("uploads"):
        api.put_archive(created["Id"], "/", _uploads_tar(inputs["uploads"]))
    return name


def _healthy(client: docker.DockerClient, name: str, started: float, timeout_s: float) -> bool:
    """Whether the healthcheck passes yet; refused once the container exits or its
    `waitTimeout` is over."""
    state = client.api.inspect_container(name)["State"]
    if state.get("Health", {}).get("Status") == "healthy":
        return True
    if not state["Running"] or time.monotonic() > started + timeout_s:
        logs = client.api.logs(name, tail=15).decode(errors="replace")
        why = "exited" if not state["Running"] else f"is not healthy after {timeout_s:.0f} s"
        raise CannotBuild(f"container {name} {why}; its last lines:\n{logs}")
    return False


def wait_healthy(client: docker.DockerClient, name: str, timeout_s: float) -> None:
    """What `wait: true` makes pulumi-docker do: block until the healthcheck passes."""
    started = time.monotonic()
    while not _healthy(client, name, started, timeout_s):
        time.sleep(0.5)


def start_wave(client: docker.DockerClient, run: Run, role: str, console: Console) -> None:
    """A component's containers as the engine creates them: each as soon as the
    containers it depends on are created (healthy, with `wait: true`), so the
    independent ones at once (an ensemble or a quorum is healthy only when its members
    are up together) and a chain one after another."""
    wave = {
        r.name: r.inputs
        for r in run.recorder.of(CONTAINER)
        if _labels(r.inputs)[f"{PREFIX}.role"] == role
    }
    waiting = dict(wave)
    creating: dict[str, float] = {}  # resource -> when its container started
    while waiting or creating:
        for resource, inputs in list(waiting.items()):
            if not set(run.recorder.depends_on[resource]) & (waiting.keys() | creating.keys()):
                client.api.start(inputs["name"])
                creating[resource] = time.monotonic()
                del waiting[resource]
        for resource, started in list(creating.items()):
            inputs = wave[resource]
            timeout_s = float(inputs.get("waitTimeout", 300))
            if not inputs.get("wait") or _healthy(client, inputs["name"], started, timeout_s):
                console.print(f"  started {inputs['name']}")
                del creating[resource]
        time.sleep(0.5)


def provider_settings(inputs: dict) -> dict[str, str]:
    """librdkafka's settings for what the Kafka provider was given: where, and its login."""
    settings = {"bootstrap.servers": ",".join(json.loads(inputs["bootstrapServers"]))}
    tls = inputs.get("tlsEnabled") == "true"
    if "saslUsername" in inputs:  # saslMechanism alone is the SDK's default, "plain"
        mechanism = inputs["saslMechanism"].upper().replace("SHA", "SHA-")
        settings |= {
            "security.protocol": "SASL_SSL" if tls else "SASL_PLAINTEXT",
            "sasl.mechanism": mechanism,
            "sasl.username": inputs["saslUsername"],
            "sasl.password": inputs["saslPassword"],
        }
    elif tls:
        settings["security.protocol"] = "SSL"
    if "caCert" in inputs:
        settings["ssl.ca.pem"] = inputs["caCert"]
    return settings


def _wait(futures: dict, what: str, where: str) -> None:
    for key, future in futures.items():
        try:
            future.result(timeout=TOPIC_TIMEOUT_S)
        except KafkaException as err:
            raise CannotBuild(f"{what} {key} at {where}: {err.args[0].str()}") from None


def create_access(run: Run, admin: AdminClient, bootstrap: str) -> None:
    """The provider's UserScramCredential and Acl resources, through the admin API."""
    upserts = [
        UserScramCredentialUpsertion(
            u.inputs["username"],
            ScramCredentialInfo(
                ScramMechanism[u.inputs["scramMechanism"].replace("-", "_")],
                int(u.inputs["scramIterations"]),
            ),
            u.inputs["password"].encode(),
        )
        for u in run.recorder.of(SCRAM_USER)
    ]
    if upserts:
        _wait(admin.alter_user_scram_credentials(upserts), "user", bootstrap)
    bindings = [
        AclBinding(
            ResourceType[a.inputs["aclResourceType"].upper()],
            a.inputs["aclResourceName"],
            ResourcePatternType[a.inputs["resourcePatternTypeFilter"].upper()],
            a.inputs["aclPrincipal"],
            a.inputs["aclHost"],
            AclOperation[a.inputs["aclOperation"].upper()],
            AclPermissionType[a.inputs["aclPermissionType"].upper()],
        )
        for a in run.recorder.of(ACL)
    ]
    if bindings:
        _wait(admin.create_acls(bindings), "ACL", bootstrap)


def create_topics(run: Run) -> None:
    """The provider's topics, users and ACLs, as the provider logs in."""
    (provider,) = run.recorder.of(KAFKA_PROVIDER)
    settings = provider_settings(provider.inputs)
    bootstrap = settings["bootstrap.servers"]
    admin = AdminClient({**settings, "log_level": 0})
    create_access(run, admin, bootstrap)
    topics = [
        NewTopic(
            t.inputs["name"],
            int(t.inputs["partitions"]),
            int(t.inputs["replicationFactor"]),
            config=t.inputs.get("config", {}),
        )
        for t in run.recorder.of(TOPIC)
    ]
    _wait(admin.create_topics(topics, request_timeout=TOPIC_TIMEOUT_S), "topic", bootstrap)


def create(client: docker.DockerClient, run: Run, console: Console) -> None:
    """Everything the program registered, in the order the engine would create it."""
    known = NOTHING_TO_CREATE | {NETWORK, VOLUME, IMAGE, REMOTE_IMAGE, CONTAINER, TOPIC}
    known |= {SCRAM_USER, ACL}
    unknown = {r.typ for r in run.recorder.registered} - known
    if unknown:
        raise CannotBuild(
            f"the program registers {', '.join(sorted(unknown))}, which "
            "scripts/docker_env.py does not create; teach create()"
        )
    networks = [r.inputs for r in run.recorder.of(NETWORK)]  # one per Docker host
    if len(networks) != 1:
        hosts = sorted({node.host for node in run.result["provisioned"].plan.nodes})
        raise CannotBuild(
            f"the nodes are on {len(hosts)} Docker hosts ({', '.join(hosts)}); this "
            "environment is made on one engine: give every node host: local"
        )
    (network,) = networks
    client.networks.create(network["name"], driver="bridge", labels=_labels(network))
    for volume in run.recorder.of(VOLUME):
        client.volumes.create(volume.inputs["name"], labels=_labels(volume.inputs))
    for image in run.recorder.of(IMAGE):
        build = image.inputs["build"]
        consumers_image(client, image.inputs["imageName"], build.get("args", {}))
    for image in run.recorder.of(REMOTE_IMAGE):
        if not client.images.list(name=image.inputs["name"]):
            raise CannotBuild(f"image {image.inputs['name']} is not on the engine")
    for container in run.recorder.of(CONTAINER):
        create_container(client, container.inputs)
    # The program's depends_on, as the engine follows it: ZooKeeper before Kafka, the
    # topics, then the consumers.
    for role in ("zookeeper", "kafka", "topics", "consumer"):
        if role == "topics":
            create_topics(run)
        else:
            start_wave(client, run, role, console)


def destroy(client: docker.DockerClient, stack: str) -> int:
    """Remove the stack's containers, networks and volumes: the teardown sweeper, told
    that every other stack on the engine is live."""
    others = stacks_on(client) - {stack}
    _, removed = sweep(client, live_stacks=others, backend=BACKEND)
    return len(removed)


# -- the command line


def stack_name(spec: str) -> str:
    return f"docker-env-{Path(spec).stem}"


def verify(inventory: Path, junit: Path, docker_host: str) -> int:
    return subprocess.run(
        [sys.executable, "-m", "infra", "verify", "--inventory", str(inventory),
         "--junit", str(junit)],
        cwd=REPO, env={**os.environ, "DOCKER_HOST": docker_host},
    ).returncode  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/docker_env.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("specs", nargs="+", help="node specs (YAML) on one Docker host")
    parser.add_argument("--out", default="build/docker-env", help="inventories and JUnit XML")
    parser.add_argument("--keep", action="store_true", help="leave the environment running")
    parser.add_argument("--down", action="store_true", help="only remove the environment")
    args = parser.parse_args(argv)
    if (args.keep or args.down) and not os.environ.get("DOCKER_HOST"):
        parser.error("--keep and --down need DOCKER_HOST: a private engine ends with this run")
    console = Console()
    failed = 0
    try:
        with engine() as docker_host:
            client = docker.DockerClient(base_url=docker_host)
            for spec in args.specs:
                stack = stack_name(spec)
                out = Path(args.out) / Path(spec).stem
                out.mkdir(parents=True, exist_ok=True)
                console.rule(spec)
                if args.down:
                    console.print(f"removed {destroy(client, stack)} resources of stack {stack}")
                    continue
                try:
                    run = declare(spec, stack, client)
                    create(client, run, console)
                    inventory = out / "inventory.json"
                    inventory.write_text(json.dumps(inventory_of(run.result["outputs"], out)))
                    failed += verify(inventory, out / "junit.xml", docker_host) != 0
                finally:
                    if not args.keep:
                        removed = destroy(client, stack)
                        console.print(f"removed {removed} resources of stack {stack}")
    except InputError as err:  # a bad spec: the CLI's own lines
        print("\n".join(err.lines()), file=sys.stderr)
        return 2
    except (CannotBuild, docker.errors.DockerException) as err:  # one line, no traceback
        print(f"docker-env: {err}", file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
