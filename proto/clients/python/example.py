#!/usr/bin/env python3
"""Drives Agent Monitor from Python through the generated stubs alone.

The whole flow of the board, as a person would run it: register an agent (a
plain CLI tool, /bin/sh) and a capability of it (a command template that
prints a few lines, slowly), create a task, watch the task's board events in a
thread, run the capability on the task, tail the run's log live, wait for its
final status, and print the events seen.

    pip install -r proto/clients/python/requirements.txt
    python3 proto/clients/python/example.py --server 127.0.0.1:50051 [--token TOKEN]
    python3 proto/clients/python/example.py --server https://amon.example:50051 \
        --ca-cert team-ca.pem --token TOKEN

Exits 0 when the run succeeded and its output and events were all seen, 1 with
a message on stderr otherwise (2 for a mistake on the command line). Every name
it creates ends in a random suffix, so it can run again and again against the
same server.
"""

import argparse
import os
import sys
import threading
import time
import uuid

try:
    import grpc
    from google.protobuf import json_format, struct_pb2
except ImportError as missing:
    sys.exit(
        f"error: {missing}: install the client's requirements with "
        "`pip install -r proto/clients/python/requirements.txt`"
    )

# The generated client (generate.sh), next to this file.
from agentmonitor.v1 import (
    agent_pb2,
    agent_pb2_grpc,
    common_pb2,
    execution_pb2,
    execution_pb2_grpc,
    task_pb2,
    task_pb2_grpc,
)

LINES = 3
# Each token is one argv entry of /bin/sh, rendered against the run's args;
# no shell ever sees a rendered token (the script reads the count as $1).
SCRIPT = 'i=1; while [ "$i" -le "$1" ]; do echo "line $i of $1"; i=$((i + 1)); sleep 0.3; done'
EXPECTED_OUTPUT = "".join(f"line {i} of {LINES}\n" for i in range(1, LINES + 1)).encode()
EXPECTED_EVENTS = ["created", "execution_queued", "execution_running", "execution_succeeded"]
FINAL = {
    common_pb2.EXECUTION_STATUS_SUCCEEDED,
    common_pb2.EXECUTION_STATUS_FAILED,
    common_pb2.EXECUTION_STATUS_CANCELLED,
    common_pb2.EXECUTION_STATUS_TIMED_OUT,
}


def section(title):
    print(f"\n== {title}", flush=True)


def status_name(status):
    """EXECUTION_STATUS_SUCCEEDED -> succeeded."""
    return common_pb2.ExecutionStatus.Name(status).removeprefix("EXECUTION_STATUS_").lower()


def struct(value):
    """A dict as a google.protobuf.Struct (numbers travel as doubles)."""
    message = struct_pb2.Struct()
    message.update(value)
    return message


class EventWatcher:
    """Collects a task's board events from TaskService.WatchTaskEvents in a thread."""

    def __init__(self, tasks, task_id, metadata):
        # after_event_id 0: the task's trail so far, then new events live,
        # with no gap and no duplicate between the two.
        self._call = tasks.WatchTaskEvents(
            task_pb2.WatchTaskEventsRequest(task_id=task_id, after_event_id=0),
            metadata=metadata,
        )
        self._seen = threading.Condition()
        self.events = []
        self.error = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            for response in self._call:
                with self._seen:
                    self.events.append(response.event)
                    self._seen.notify_all()
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                self.error = error
        with self._seen:
            self._seen.notify_all()

    def types(self):
        with self._seen:
            return [event.event_type for event in self.events]

    def wait_for(self, event_types, timeout):
        """Waits until every one of `event_types` has been seen; False on timeout."""
        return self.wait_until(
            lambda events: set(event_types) <= {e.event_type for e in events}, timeout
        )

    def wait_until(self, seen, timeout):
        """Waits until `seen(events)` holds; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._seen:
            while not seen(self.events):
                left = deadline - time.monotonic()
                if left <= 0 or self.error or not self._thread.is_alive():
                    return False
                self._seen.wait(left)
            return True

    def stop(self):
        self._call.cancel()
        self._thread.join(timeout=5)


def moved_to(event, status):
    """Whether `event` moved the task to the column `status`."""
    return (
        event.event_type == "status_changed"
        and json_format.MessageToDict(event.payload).get("to") == status
    )


def describe(event):
    payload = json_format.MessageToDict(event.payload)
    detail = f"{payload['from']} -> {payload['to']}" if "to" in payload else ""
    actor = common_pb2.ActorType.Name(event.actor_type).removeprefix("ACTOR_TYPE_").lower()
    return f"#{event.id:<6} {event.event_type:<20} {detail:<26} by {actor}"


def run(args):
    tls = args.server.startswith("https://")
    target = args.server.removeprefix("https://").removeprefix("http://")
    metadata = (("authorization", f"Bearer {args.token}"),) if args.token else ()
    suffix = uuid.uuid4().hex[:8]

    section(f"Connecting to {target}{' over TLS' if tls else ''}")
    if tls:
        # The system's roots, or the private CA given.
        roots = None
        if args.ca_cert:
            with open(args.ca_cert, "rb") as pem:
                roots = pem.read()
        channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=roots))
    else:
        channel = grpc.insecure_channel(target)
    try:
        grpc.channel_ready_future(channel).result(timeout=10)
    except grpc.FutureTimeoutError:
        raise Failure(f"cannot reach an Agent Monitor server at {target}")
    agents = agent_pb2_grpc.AgentServiceStub(channel)
    tasks = task_pb2_grpc.TaskServiceStub(channel)
    executions = execution_pb2_grpc.ExecutionServiceStub(channel)
    print(f"   connected{' (with a client token)' if args.token else ''}")

    section("Registering an agent: /bin/sh, a plain CLI tool (AgentService.CreateAgent)")
    agent = agents.CreateAgent(
        agent_pb2.CreateAgentRequest(
            agent=agent_pb2.Agent(
                name=f"Python example {suffix}",
                slug=f"py-example-{suffix}",
                binary_path="/bin/sh",
                # The child sees nothing of the worker's environment but these.
                env_allowlist=["PATH"],
            )
        ),
        metadata=metadata,
    ).agent
    print(f"   agent {agent.slug}  id {agent.id}")

    section("Adding a capability: a command template (AgentService.CreateCapability)")
    capability = agents.CreateCapability(
        agent_pb2.CreateCapabilityRequest(
            capability=agent_pb2.Capability(
                agent_id=agent.id,
                key="count",
                label="print N lines, one every 0.3 s",
                interaction_mode=common_pb2.INTERACTION_MODE_TEMPLATE,
                command_tokens=["-c", SCRIPT, "count", "{{lines}}"],
                args_schema=struct(
                    {
                        "type": "object",
                        "properties": {"lines": {"type": "integer", "minimum": 1, "maximum": 20}},
                        "required": ["lines"],
                    }
                ),
                timeout_sec=60,
            )
        ),
        metadata=metadata,
    ).capability
    print(f"   capability {agent.slug}/{capability.key}  id {capability.id}")
    print(f"   argv: /bin/sh {' '.join(repr(t) for t in capability.command_tokens)}")

    section("Creating a task (TaskService.CreateTask)")
    task = tasks.CreateTask(
        task_pb2.CreateTaskRequest(
            task=task_pb2.Task(
                title=f"Python example {suffix}",
                description="Created by proto/clients/python/example.py",
            )
        ),
        metadata=metadata,
    ).task
    print(f"   task {task.title!r}  id {task.id}")

    section("Watching the task's board events in a thread (TaskService.WatchTaskEvents)")
    watcher = EventWatcher(tasks, task.id, metadata)
    try:
        return run_and_check(args, executions, watcher, task, capability, metadata)
    finally:
        watcher.stop()
        channel.close()


def run_and_check(args, executions, watcher, task, capability, metadata):
    section(f"Running the capability with lines={LINES} (ExecutionService.CreateExecution)")
    execution = executions.CreateExecution(
        execution_pb2.CreateExecutionRequest(
            task_id=task.id, capability_id=capability.id, args=struct({"lines": LINES})
        ),
        metadata=metadata,
    ).execution
    print(f"   execution {execution.id}  {status_name(execution.status)}")

    section("Its log, live as the child writes it (ExecutionService.StreamLogs, follow)")
    received = bytearray()
    chunks = 0
    stream = executions.StreamLogs(
        execution_pb2.StreamLogsRequest(execution_id=execution.id, offset=0, follow=True),
        metadata=metadata,
        timeout=args.timeout,
    )
    for chunk in stream:
        if chunk.offset != len(received):
            raise Failure(f"log chunk at offset {chunk.offset}, expected {len(received)}")
        sys.stdout.buffer.write(chunk.data)
        sys.stdout.buffer.flush()
        received += chunk.data
        chunks += 1
    print(f"-- end of log: {len(received)} bytes in {chunks} chunks", flush=True)

    section("Final status (ExecutionService.GetExecution)")
    deadline = time.monotonic() + args.timeout
    while True:
        execution = executions.GetExecution(
            execution_pb2.GetExecutionRequest(id=execution.id), metadata=metadata
        ).execution
        if execution.status in FINAL or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    exit_code = execution.exit_code if execution.HasField("exit_code") else None
    print(
        f"   {status_name(execution.status)}, exit code {exit_code}, "
        f"{execution.log_byte_size} bytes / {execution.log_line_count} lines stored, "
        f"worker {execution.worker_id or '-'}"
    )

    section("Board events seen for the task (from the watch)")
    # The last events are written with the run's final status; give the
    # stream a moment to deliver them.
    all_seen = watcher.wait_for(EXPECTED_EVENTS, timeout=10)
    if all_seen:
        # The task follows its run to the done column in the same write;
        # its events arrive one by one, so wait for that one itself (any
        # status_changed would do as soon as the task went in progress).
        all_seen = watcher.wait_until(
            lambda events: any(moved_to(e, "done") for e in events), timeout=5
        )
    for event in list(watcher.events):
        print(f"   {describe(event)}")

    problems = []
    if execution.status != common_pb2.EXECUTION_STATUS_SUCCEEDED or exit_code != 0:
        error = f" ({execution.error})" if execution.HasField("error") else ""
        problems.append(
            f"the run ended {status_name(execution.status)}, exit code {exit_code}{error}"
        )
    if bytes(received) != EXPECTED_OUTPUT:
        problems.append(f"the log was {bytes(received)!r}, expected {EXPECTED_OUTPUT!r}")
    if watcher.error is not None:
        problems.append(f"the event watch failed: {watcher.error.code().name}: {watcher.error.details()}")
    missing = [t for t in EXPECTED_EVENTS if t not in watcher.types()]
    if missing:
        problems.append(f"events never seen: {', '.join(missing)}")
    done = [e for e in watcher.events if moved_to(e, "done")]
    if not all_seen or not done:
        problems.append("the task was never seen moving to done")
    if problems:
        raise Failure("; ".join(problems))

    section("OK: the run succeeded, its output arrived live and its board events were seen")
    return 0


class Failure(Exception):
    """The flow did not go as expected; the message says how."""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server",
        default="127.0.0.1:50051",
        help="the server: host:port, http://host:port, or https://host:port for TLS "
        "(default 127.0.0.1:50051)",
    )
    parser.add_argument(
        "--ca-cert",
        default=os.environ.get("AMON_CA_CERT"),
        help="PEM certificate of the CA that signed the server's certificate, for https:// "
        "(default $AMON_CA_CERT, else the system's roots)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("AMON_CLIENT_TOKEN"),
        help="client token, sent as `authorization: Bearer TOKEN` (default $AMON_CLIENT_TOKEN)",
    )
    parser.add_argument(
        "--timeout", type=float, default=60, help="seconds to wait for the run (default 60)"
    )
    args = parser.parse_args()
    try:
        return run(args)
    except Failure as failure:
        print(f"\nFAILED: {failure}", file=sys.stderr)
    except grpc.RpcError as error:
        hint = ""
        if error.code() == grpc.StatusCode.UNAUTHENTICATED:
            hint = " (pass --token or set AMON_CLIENT_TOKEN)"
        print(f"\nFAILED: {error.code().name}: {error.details()}{hint}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
