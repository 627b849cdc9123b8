"""The supervisor: N worker processes in one consumer group, kept alive, reported on.

Its direct children are exactly its workers (`python -m consumers worker`), so
`ps --ppid` shows the deployment as planned. A worker that dies is restarted with
backoff; five deaths of one worker within a minute are reported as a crash loop.
Every few seconds one line says records/s, partitions owned, lag and restarts, and
`--status-file` keeps a JSON copy (which worker owns which partitions) for checks
that the broker cannot answer; with `metrics=HOST:PORT` the same figures are served to
Prometheus (consumers/metrics.py). SIGTERM/SIGINT: every worker finishes its batch,
commits and leaves the group; the supervisor exits 0 when all of them did.
"""

from __future__ import annotations

import dataclasses
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from consumers.lifetime import die_with_parent
from consumers.metrics import GroupMetrics, serve
from consumers.settings import Settings

REPORT_INTERVAL_S = 5.0
CRASH_WINDOW_S = 60.0
CRASH_LOOP_DEATHS = 5
MAX_BACKOFF_S = 30.0
STOP_GRACE_S = 30.0


@dataclass
class Slot:
    """One worker position: the process now filling it and its history."""

    index: int
    process: subprocess.Popen | None = None
    stats_fd: int = -1
    buffer: bytes = b""
    deaths: deque = field(default_factory=deque)
    restarts: int = 0
    restart_at: float = 0.0
    partitions: list[str] = field(default_factory=list)
    lag: dict[str, int] = field(default_factory=dict)  # "topic:N" -> records behind

    def recent_deaths(self, now: float) -> int:
        """Deaths within the crash window (older ones forgotten)."""
        while self.deaths and now - self.deaths[0] > CRASH_WINDOW_S:
            self.deaths.popleft()
        return len(self.deaths)


def describe_exit(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


class Supervisor:
    def __init__(self, settings: Settings, status_file: str | None = None):
        self.settings = settings
        self.status_file = Path(status_file) if status_file else None
        self.slots = [Slot(i) for i in range(settings.processes)]
        self.selector = selectors.DefaultSelector()
        self.stopping = False
        self.window = {"records": 0, "dlq": 0}
        self.window_start = time.monotonic()
        self.metrics = GroupMetrics(settings.group, settings.processes)

    def log(self, message: str) -> None:
        print(f"{self.settings.group}: {message}", file=sys.stderr, flush=True)

    # -- workers

    def start(self, slot: Slot) -> None:
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        command = [
            sys.executable,
            "-m",
            "consumers",
            "worker",
            "--index",
            str(slot.index),
            "--stats-fd",
            str(write_fd),
            "--settings",
            json.dumps(dataclasses.asdict(self.settings)),
        ]
        # A worker whose supervisor dies gets SIGTERM and stops as if asked.
        slot.process = subprocess.Popen(command, pass_fds=(write_fd,), preexec_fn=die_with_parent)
        os.close(write_fd)
        slot.stats_fd, slot.buffer = read_fd, b""
        self.selector.register(read_fd, selectors.EVENT_READ, slot)
        self.metrics.started(slot.index, slot.restarts)

    def _forget_pipe(self, slot: Slot) -> None:
        if slot.stats_fd >= 0:
            self.selector.unregister(slot.stats_fd)
            os.close(slot.stats_fd)
            slot.stats_fd = -1

    def _on_death(self, slot: Slot, code: int, now: float) -> None:
        self._forget_pipe(slot)
        slot.process, slot.partitions, slot.lag = None, [], {}
        self.metrics.exited(slot.index)
        slot.deaths.append(now)
        deaths = slot.recent_deaths(now)
        delay = min(MAX_BACKOFF_S, 0.5 * 2 ** (deaths - 1))
        slot.restart_at = now + delay
        self.log(f"worker {slot.index} {describe_exit(code)}; restarting in {delay:g} s")
        self.metrics.crash_looping(slot.index, deaths >= CRASH_LOOP_DEATHS)
        if deaths >= CRASH_LOOP_DEATHS:
            self.log(
                f"worker {slot.index} is crash-looping: {deaths} exits in the last "
                f"{CRASH_WINDOW_S:g} s; see its errors above"
            )

    def _read_stats(self, slot: Slot) -> None:
        try:
            chunk = os.read(slot.stats_fd, 65536)
        except BlockingIOError:
            return
        slot.buffer += chunk
        *lines, slot.buffer = slot.buffer.split(b"\n")
        for line in lines:
            stats = json.loads(line)
            self.window["records"] += stats["records"]
            self.window["dlq"] += stats["dlq"]
            slot.partitions, slot.lag = stats["partitions"], stats["lag"]
            self.metrics.reported(slot.index, stats)

    # -- reporting

    def report(self, now: float) -> None:
        elapsed = max(now - self.window_start, 1e-9)
        figures = {
            "workers_alive": sum(s.process is not None for s in self.slots),
            "records_per_s": round(self.window["records"] / elapsed),
            "dlq": self.window["dlq"],
            "partitions_owned": sum(len(s.partitions) for s in self.slots),
            "lag": sum(sum(s.lag.values()) for s in self.slots),
            "restarts": sum(s.restarts for s in self.slots),
        }
        self.log(
            f"{figures['workers_alive']}/{len(self.slots)} workers, "
            f"{figures['records_per_s']:,} records/s, {figures['dlq']} to DLQ, "
            f"{figures['partitions_owned']} partitions owned, lag {figures['lag']:,}, "
            f"restarts {figures['restarts']}"
        )
        self.window = dict.fromkeys(self.window, 0)
        self.window_start = now
        self.write_status(figures)
        for slot in self.slots:  # a loop ends once a worker outlives the crash window
            self.metrics.crash_looping(slot.index, slot.recent_deaths(now) >= CRASH_LOOP_DEATHS)

    def write_status(self, figures: dict) -> None:
        if not self.status_file:
            return
        status = {
            "group": self.settings.group,
            "topics": self.settings.topics,
            "processes": len(self.slots),
            **figures,
            "workers": [
                {
                    "index": s.index,
                    "pid": s.process.pid if s.process else None,
                    "partitions": s.partitions,
                    "restarts": s.restarts,
                }
                for s in self.slots
            ],
        }
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(status, indent=2) + "\n")
        tmp.replace(self.status_file)

    def serve_metrics(self) -> None:
        """The Prometheus endpoint, if the settings name one (a SettingsError if taken)."""
        if self.settings.metrics:
            serve(self.metrics, self.settings.metrics)
            self.log(f"serving Prometheus metrics at http://{self.settings.metrics}/metrics")

    # -- the loop

    def stop(self, *_args) -> None:
        self.stopping = True

    def tend(self, now: float) -> None:
        """Notice the workers that died; restart those whose backoff is over."""
        for slot in self.slots:
            if slot.process is not None and (code := slot.process.poll()) is not None:
                self._on_death(slot, code, now)
            elif slot.process is None and now >= slot.restart_at and not self.stopping:
                slot.restarts += 1
                self.start(slot)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        for slot in self.slots:
            self.start(slot)
        self.log(f"started {len(self.slots)} workers on {', '.join(self.settings.topics)}")
        last_report = time.monotonic()
        while not self.stopping:
            for key, _ in self.selector.select(timeout=0.2):
                self._read_stats(key.data)
            now = time.monotonic()
            self.tend(now)
            if now - last_report >= REPORT_INTERVAL_S:
                self.report(now)
                last_report = now
        return self.shutdown()

    def shutdown(self) -> int:
        running = [s for s in self.slots if s.process is not None]
        for slot in running:
            slot.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        clean = True
        for slot in running:
            try:
                code = slot.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                slot.process.kill()
                code = slot.process.wait()
            if code != 0:
                clean = False
                self.log(f"worker {slot.index} {describe_exit(code)} while stopping")
            self._read_stats(slot)
            self._forget_pipe(slot)
        self.report(time.monotonic())
        self.log("stopped" if clean else "stopped, not cleanly")
        return 0 if clean else 1
