"""The Pulumi program run under Pulumi's own mocks: what it registers, recorded.

No Pulumi engine can run on the build machines. The unit tests read these records to
check the program's declarations, and scripts/docker_env.py creates them on a Docker
engine, so a test environment is exactly what `pulumi up` would declare.

The mocks return every resource's inputs as its state, plus the one computed output
the program reads: RemoteImage.imageId, which here is the image reference itself (a
tag runs a container as well as an id does). Under mocks, input keys are camelCase
and numbers arrive as floats; the records hold secret inputs in the clear, and
`Recorder.secret` says which inputs the engine was told are secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
from google.protobuf.json_format import MessageToDict
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.rpc import _special_secret_sig, _special_sig_key

PROJECT = "kafka-log-cluster"


def secret_paths(value: Any, path: str = "") -> list[str]:
    """Where in a registration's serialised inputs the values marked secret are."""
    if isinstance(value, dict):
        if value.get(_special_sig_key) == _special_secret_sig:
            return [path]
        return [p for k, v in value.items() for p in secret_paths(v, f"{path}.{k}".lstrip("."))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in secret_paths(v, f"{path}[{i}]")]
    return []


def reveal(value: Any) -> Any:
    """`value` with every secret in the clear (the mocks hand some over still wrapped)."""
    if isinstance(value, dict):
        if value.get(_special_sig_key) == _special_secret_sig:
            return reveal(value["value"])
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


class Recorder(pulumi.runtime.Mocks):
    def __init__(self):
        self.registered: list[pulumi.runtime.MockResourceArgs] = []
        # resource name -> the names of the resources it depends on (depends_on and
        # inputs), as the engine would order them; the mocks' own args leave this out.
        self.depends_on: dict[str, list[str]] = {}
        # resource name -> the paths of its inputs registered as secrets ("saslPassword",
        # "uploads[3].contentBase64")
        self.secret: dict[str, list[str]] = {}
        # resource name -> whether a replacement deletes it first (deleteBeforeReplace)
        self.delete_before_replace: dict[str, bool] = {}

    def new_resource(self, args):
        args.inputs = reveal(args.inputs)
        self.registered.append(args)
        state = dict(args.inputs)
        if args.typ == "docker:index/remoteImage:RemoteImage":
            state["imageId"] = args.inputs["name"]
        return [f"{args.name}-id", state]

    def call(self, args):
        return {}

    def of(self, typ: str) -> list:
        return [r for r in self.registered if r.typ == typ]


class RecordingMonitor(MockMonitor):
    """The mock engine, noting what each registration depends on."""

    def __init__(self, recorder: Recorder):
        super().__init__(recorder)
        self.recorder = recorder

    def RegisterResource(self, request):
        self.recorder.depends_on[request.name] = [
            urn.rsplit("::", 1)[-1] for urn in request.dependencies
        ]
        self.recorder.secret[request.name] = secret_paths(MessageToDict(request.object))
        self.recorder.delete_before_replace[request.name] = request.deleteBeforeReplace
        return super().RegisterResource(request)


@dataclass
class Run:
    recorder: Recorder
    result: dict[str, Any] = field(default_factory=dict)


def run_program(
    spec: str,
    stack: str = "test",
    run: Run | None = None,
    secrets: dict[str, str] | None = None,
    **config: str,
) -> Run:
    """Run the program for `spec` with these stack config values (`kafka-image`, ...)
    and secret ones (`keyring`), recording into `run` (a fresh one by default).

    Raises pulumi.RunError with the CLI's lines for a bad spec."""
    from infra.provision.stack import provision

    run = run or Run(Recorder())
    pulumi.runtime.set_mocks(
        run.recorder,
        project=PROJECT,
        stack=stack,
        preview=False,
        monitor=RecordingMonitor(run.recorder),
    )
    values = {"spec": spec, **config, **(secrets or {})}
    pulumi.runtime.set_all_config(
        {f"{PROJECT}:{k}": v for k, v in values.items()},
        secret_keys=[f"{PROJECT}:{k}" for k in secrets or {}],
    )

    @pulumi.runtime.test
    def program():
        provisioned = provision()
        run.result["provisioned"] = provisioned
        urns = [c.urn for c in provisioned.kafka.containers]
        outputs = provisioned.outputs
        resolved = pulumi.Output.all(*urns, outputs).apply(
            lambda values: run.result.update(urns=values[:-1], outputs=values[-1])
        )
        # Whether each output reaches the engine as a secret.
        secret = pulumi.Output.all(
            *[pulumi.Output.from_input(v).is_secret() for v in outputs.values()]
        )
        return pulumi.Output.all(resolved, secret).apply(
            lambda values: run.result.update(
                secret_outputs=dict(zip(outputs, values[1], strict=True))
            )
        )

    program()
    return run
