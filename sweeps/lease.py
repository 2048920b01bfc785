"""One writer per sweep: the lease every writer takes before touching `<results>/<name>/`.

    with hold(store, "grok sweep"):          # refuses at once (LeaseHeld) if another writer holds it
        ...                                  # a thread renews the heartbeat meanwhile

Two drivers on one sweep destroy each other's work: the second one's start-up removes the first
one's uncommitted parts as crash leftovers, both train the same packs under the same part names
and commit records. So `grok sweep` (grid, Optuna, bisection), `grok measure` and `grok train
--results` take the sweep's lease before they read a record or delete anything; compaction runs
inside them (a pack compacts itself when done; measure rewrites through it) and is covered by their
lease. Ray trials write under their driver's lease and take none themselves.

The lease is the sweep's `driver.json` (one home for "who writes this sweep"; `grok status` reads
it to tell running packs from interrupted ones): state (running / ended), the holder's command,
host and pid, when it started and its heartbeat, renewed every HEARTBEAT_S. A lease is taken over
when it is ended, when its heartbeat is older than STALE_S, or when its pid is gone on this host
(a SIGKILLed driver); the takeover is logged and kept in the record (`took_over`). `force` takes a
live one: the user says the holder is gone (another node died without ending it, say).

Taking, renewing and ending the lease are compare-and-swap writes, never read-then-write, so of two
writers that start together exactly one wins:
- local disk and shared mounts: the swap runs under an exclusive POSIX lock (fcntl.lockf) on
  `.driver.lock` beside the record, and the record itself is written atomically (temporary name,
  rename). A shared mount must honour POSIX locks across nodes (NFSv4, NFSv3 with lockd, Lustre
  and CephFS do; a mount with `nolock`/`local_lock` does not);
- s3:// (AWS S3, MinIO, moto's server): a PUT with `If-None-Match: *` to create the record and
  `If-Match: <ETag>` to change it, through boto3 (pyarrow's S3FileSystem has no conditional PUT);
  the store must answer a failed precondition with 412 (or 409 for concurrent conditional writes);
- any other pyarrow filesystem (gs://, ...): read then write, with a warning that two drivers
  starting within the same second are not excluded.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

from grokcore.layout import LEASE_FILE, LOCK_FILE
from sweeps.parquet import SweepStore, is_disk_full

log = logging.getLogger("sweeps")

HEARTBEAT_S = 10.0
"""How often the holder renews its heartbeat."""
STALE_S = 120.0
"""A lease whose heartbeat is older than this is taken over (twelve missed heartbeats: a driver
stalled that long on a loaded node still keeps it)."""


class LeaseHeld(RuntimeError):
    """Another live writer holds the sweep."""


def holder_state(record: dict[str, Any] | None, now: float | None = None) -> str | None:
    """running, ended, or dead (its heartbeat older than STALE_S, or its pid gone on this host);
    None where no writer ever took the lease. The one rule for a live holder: the lease, and
    `grok status` telling running packs from interrupted ones."""
    if record is None:
        return None
    if record.get("state") != "running":
        return "ended"
    now = time.time() if now is None else now
    beat = record.get("heartbeat", record.get("started"))
    if isinstance(beat, (int, float)) and now - beat > STALE_S:
        return "dead"
    if record.get("slurm_job"):  # SLURM's kill at a job's time limit leaves the record "running"
        from sweeps.slurm_jobs import job_ended

        if job_ended(str(record["slurm_job"])):
            return "dead"
    if record.get("host") == socket.gethostname():
        try:
            os.kill(int(record["pid"]), 0)
        except ProcessLookupError:
            return "dead"
        except (PermissionError, KeyError, ValueError, TypeError):
            pass
    return "running"


def describe_holder(record: dict[str, Any] | None, now: float | None = None) -> str:
    """'grok sweep (pid 123 on node-1), started 5 min ago, last heartbeat 3 s ago'."""
    now = time.time() if now is None else now
    record = record or {}
    beat = record.get("heartbeat", record.get("started"))
    started = record.get("started")
    return (
        f"{record.get('command', 'a driver')} (pid {record.get('pid')} on {record.get('host')})"
        + (f", started {_ago(now - started)} ago" if isinstance(started, (int, float)) else "")
        + (f", last heartbeat {_ago(now - beat)} ago" if isinstance(beat, (int, float)) else "")
    )


def _ago(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# ---- compare-and-swap on the record, per kind of storage ----------------------------------------
class _LockedFile:
    """Local disk or a shared mount: the swap under an exclusive POSIX lock beside the record."""

    def __init__(self, store: SweepStore):
        self.store = store
        self.lock = store.path(LOCK_FILE)

    def read(self) -> tuple[dict[str, Any] | None, Any]:
        text = self.store.read_text(LEASE_FILE)
        return (None if text is None else json.loads(text)), text

    def swap(self, record: dict[str, Any], expected: Any) -> bool:
        import fcntl

        self.store.fs.create_dir(self.store.root, recursive=True)
        with open(self.lock, "a") as f:
            fcntl.lockf(f, fcntl.LOCK_EX)
            try:
                if self.store.read_text(LEASE_FILE) != expected:
                    return False
                self.store.write_json(LEASE_FILE, record)
                return True
            finally:
                fcntl.lockf(f, fcntl.LOCK_UN)

    def remove(self, expected: Any) -> None:
        import fcntl

        with open(self.lock, "a") as f:
            fcntl.lockf(f, fcntl.LOCK_EX)
            try:
                if self.store.read_text(LEASE_FILE) == expected:
                    self.store.fs.delete_file(self.store.path(LEASE_FILE))
            finally:
                fcntl.lockf(f, fcntl.LOCK_UN)


class _S3Conditional:
    """s3://: conditional PUTs (If-None-Match / If-Match) through boto3, with the endpoint and
    credentials pyarrow uses (AWS_* variables, or the URI's endpoint_override and scheme)."""

    def __init__(self, store: SweepStore):
        try:
            import boto3
        except ImportError as e:
            raise RuntimeError(
                f"{store.uri}: the sweep's lease on s3:// is a conditional PUT through boto3, which is "
                "not installed: pip install 'grokking-sweeps[s3]'"
            ) from e

        parts = urlsplit(store.uri)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        endpoint = query.get("endpoint_override")
        if endpoint and "://" not in endpoint:
            endpoint = f"{query.get('scheme', 'https')}://{endpoint}"
        self.client = boto3.client("s3", endpoint_url=endpoint or None, region_name=query.get("region"))
        self.bucket = parts.netloc
        self.key = f"{parts.path.strip('/')}/{LEASE_FILE}"

    def read(self) -> tuple[dict[str, Any] | None, Any]:
        try:
            got = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except self.client.exceptions.NoSuchKey:
            return None, None
        return json.loads(got["Body"].read()), got["ETag"]

    def swap(self, record: dict[str, Any], expected: Any) -> bool:
        from botocore.exceptions import ClientError

        condition = {"IfNoneMatch": "*"} if expected is None else {"IfMatch": expected}
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=json.dumps(record, indent=1).encode(),
                ContentType="application/json",
                **condition,
            )
            return True
        except ClientError as e:
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status in (404, 409, 412) or e.response.get("Error", {}).get("Code") in (
                "PreconditionFailed",
                "ConditionalRequestConflict",
                "NoSuchKey",
            ):
                return False
            raise

    def remove(self, expected: Any) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key)


class _Unconditional(_LockedFile):
    """A filesystem with neither POSIX locks nor conditional writes known here: read, then write."""

    def swap(self, record: dict[str, Any], expected: Any) -> bool:
        if self.store.read_text(LEASE_FILE) != expected:
            return False
        self.store.write_json(LEASE_FILE, record)
        return True

    def remove(self, expected: Any) -> None:
        if self.store.read_text(LEASE_FILE) == expected:
            self.store.fs.delete_file(self.store.path(LEASE_FILE))


def _record_io(store: SweepStore) -> _LockedFile | _S3Conditional:
    if store.local:
        return _LockedFile(store)
    if store.uri.startswith("s3://"):
        return _S3Conditional(store)
    log.warning(
        "%s: this filesystem offers no conditional write here; two writers starting together "
        "are not excluded (local paths, shared mounts and s3:// are)",
        store.uri,
    )
    return _Unconditional(store)


# ---- the lease ------------------------------------------------------------------------------------
class SweepLease:
    """The sweep's lease for one writer (module docstring). `acquire` raises LeaseHeld when another
    live writer holds it; `renew` beats; `release` marks it ended."""

    def __init__(self, store: SweepStore, command: str, force: bool = False):
        self.store, self.command, self.force = store, command, force
        self.io = _record_io(store)
        self.token = uuid.uuid4().hex
        self.record: dict[str, Any] | None = None
        self.lost: dict[str, Any] | None = None  # the record that replaced ours (a --force elsewhere)

    def acquire(self) -> None:
        for _ in range(5):  # a lost swap means another writer moved the record: decide again
            current, version = self.io.read()
            state = holder_state(current)
            if state == "running" and not self.force:
                raise LeaseHeld(
                    f"{self.store.uri} is being written by {describe_holder(current)}; one writer per "
                    f"sweep at a time: wait for it to end, or if it is gone pass --force (a lease not "
                    f"renewed for {STALE_S:.0f} s is taken over without it)"
                )
            now = time.time()
            record = {
                "state": "running",
                "command": self.command,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "started": now,
                "heartbeat": now,
                "token": self.token,
            }
            if os.environ.get("SLURM_JOB_ID"):  # `grok status` and the next writer ask SLURM whether the job ended
                record["slurm_job"] = os.environ["SLURM_JOB_ID"]
            if state in ("running", "dead") and current is not None:  # a holder's state implies its record
                record["took_over"] = {k: current.get(k) for k in ("command", "host", "pid", "started", "heartbeat")}
            if self.io.swap(record, version):
                self.record = record
                if state in ("running", "dead"):
                    log.warning(
                        "%s: took over the lease of %s (%s)",
                        self.store.uri,
                        describe_holder(current),
                        "--force" if state == "running" else "its holder is gone",
                    )
                return
        raise LeaseHeld(f"{self.store.uri}: other writers keep taking the sweep's lease; try again")

    def renew(self) -> bool:
        """Beat; False once another writer took the lease (then this one writes no more records)."""
        if self.record is None or self.lost is not None:
            return False
        current, version = self.io.read()
        if current is None or current.get("token") != self.token:
            self.lost = current or {}
            log.error(
                "%s: the sweep's lease was taken by %s; this %s no longer holds it",
                self.store.uri,
                describe_holder(self.lost) if current else "nobody (the record is gone)",
                self.command,
            )
            return False
        record = {**self.record, "heartbeat": time.time()}
        if self.io.swap(record, version):
            self.record = record
        return True

    def release(self) -> None:
        if self.record is None or self.lost is not None:
            return
        current, version = self.io.read()
        if current is not None and current.get("token") == self.token:
            try:
                self.io.swap({**current, "state": "ended", "ended": time.time()}, version)
            except OSError as e:
                if not is_disk_full(e):
                    raise
                self.io.remove(version)  # no room for the ended record: no record frees the sweep as well
        self.record = None


@contextmanager
def hold(store: SweepStore, command: str, force: bool = False) -> Iterator[SweepLease]:
    """Take the sweep's lease, renew it from a thread every HEARTBEAT_S, mark it ended on the way
    out (Ctrl-C and errors included). A failed renewal (a full disk, a network hiccup) is logged
    and tried again at the next beat: the lease goes stale only after STALE_S without one."""
    lease = SweepLease(store, command, force)
    with store.disk_full_is_fatal("the sweep's lease"):
        lease.acquire()
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            try:
                if not lease.renew():
                    return
            except Exception as e:  # noqa: BLE001 - the next beat tries again
                log.warning("%s: could not renew the sweep's lease: %s", store.uri, e)

    thread = threading.Thread(target=beat, name="sweep-lease", daemon=True)
    thread.start()
    try:
        yield lease
    finally:
        stop.set()
        thread.join(timeout=HEARTBEAT_S)
        try:
            lease.release()
        except Exception as e:  # noqa: BLE001 - a lease left running is taken over as its pid is gone
            log.warning("%s: could not mark the sweep's lease ended: %s", store.uri, e)
