"""The Pulumi program run under Pulumi's own mocks: what it registers, recorded.

No Pulumi engine can run on the build machines. The unit tests read these records to
check the program's declarations, and scripts/docker_env.py creates them on a Docker
engine, so a test environment is exactly what `pulumi up` would declare.

The mocks return every resource's inputs as its state, plus the one computed output
the program reads: RemoteImage.imageId, which here is the image reference itself (a
tag runs a container as well as an id does). Under mocks, input keys are camelCase
and numbers arrive as floats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor

PROJECT = "kafka-log-cluster"


class Recorder(pulumi.runtime.Mocks):
    def __init__(self):
        self.registered: list[pulumi.runtime.MockResourceArgs] = []
        # resource name -> the names of the resources it depends on (depends_on and
        # inputs), as the engine would order them; the mocks' own args leave this out.
        self.depends_on: dict[str, list[str]] = {}

    def new_resource(self, args):
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
        return super().RegisterResource(request)


@dataclass
class Run:
    recorder: Recorder
    result: dict[str, Any] = field(default_factory=dict)


def run_program(spec: str, stack: str = "test", run: Run | None = None, **config: str) -> Run:
    """Run the program for `spec` with these stack config values (`kafka-image`, ...),
    recording into `run` (a fresh one by default).

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
    pulumi.runtime.set_all_config(
        {f"{PROJECT}:spec": spec, **{f"{PROJECT}:{k}": v for k, v in config.items()}}
    )

    @pulumi.runtime.test
    def program():
        provisioned = provision()
        run.result["provisioned"] = provisioned
        urns = [c.urn for c in provisioned.kafka.containers]
        return pulumi.Output.all(*urns).apply(lambda values: run.result.setdefault("urns", values))

    program()
    return run
