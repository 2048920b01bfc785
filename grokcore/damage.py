"""A sweep's committed file that cannot be read, named with the pack and members it belongs to.

Every reader of a sweep (load_sweep and `grok report`, `grok status`, `grok sweep`'s planning,
`grok measure`, `grok check`) says the same about a damaged file (a Parquet part whose footer is
gone, a safetensors file cut short, a commit record that is not JSON): which file, what is wrong,
which pack wrote it and which members' rows or weights it holds, and how to mend it. Both packages
read the results layout, and the writer (sweeps) must not import the reader (analysis), so the rule
lives in grokcore beside the layout (an AnalysisError, so that `grok report` exits 2 on it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from grokcore.errors import AnalysisError
from grokcore.layout import PART_RE, PLAN_FILE, RECORD_RE, SNAPSHOT_DIR, record_path
from grokcore.parquet_files import CONCURRENT_READS

SNAPSHOT_SUFFIX = ".safetensors"
SHOWN_MEMBERS = 4  # members named in a message; the rest are counted


class DamagedFile(AnalysisError):
    """A committed file of a sweep that cannot be read. `path` as the user gave the sweep, `pack`
    (None when the name says none) and `members` (its run_ids, [] when nothing records them)."""

    def __init__(self, path: str, reason: str, pack: str | None, members: Sequence[str], sweep: str):
        self.path, self.reason, self.pack, self.members, self.sweep = path, reason, pack, list(members), sweep
        super().__init__(
            self.describe() + f". `grok check {sweep}` lists every damaged file; "
            "`grok sweep SPEC --repair` trains its pack again"
        )

    def describe(self) -> str:
        """One line without the advice: file, reason, pack and members."""
        owner = (
            "no pack named in its file name" if self.pack is None else f"pack {self.pack} ({_members(self.members)})"
        )
        return f"{self.path}: damaged ({self.reason}); it belongs to {owner}"


def _members(members: Sequence[str]) -> str:
    if not members:
        return "members unknown: neither its record nor plan.json names them"
    shown = ", ".join(members[:SHOWN_MEMBERS])
    more = len(members) - SHOWN_MEMBERS
    return f"{len(members)} member(s): {shown}" + (f" and {more} more" if more > 0 else "")


def pack_of(path: str) -> str | None:
    """The pack a part, snapshot file or commit record belongs to, from its path."""
    name = path.rsplit("/", 1)[-1]
    m = PART_RE.match(name)
    if m is not None:
        return m["pack"]
    m = RECORD_RE.search(path)
    return m["pack"] if m is not None else None


def members_of(fs: pafs.FileSystem, root: str, pack: str) -> list[str]:
    """A pack's members: from its commit record, else (the record itself damaged, or a pack that
    never committed) from plan.json; [] when neither can say."""
    for rel, pick in (
        (record_path(pack), lambda d: d.get("members")),
        (PLAN_FILE, lambda d: (d.get("packs") or {}).get(pack)),
    ):
        try:
            with fs.open_input_stream(f"{root}/{rel}") as f:
                data = json.loads(f.read().decode())
            members = pick(data) if isinstance(data, dict) else None
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(members, list) and members:
            return [str(m) for m in members]
    return []


def damaged(fs: pafs.FileSystem, root: str, shown: str, path: str, reason: str) -> DamagedFile:
    """The error for the file at `path` (on fs) of the sweep at `root` (shown to the user as `shown`)."""
    rel = path[len(root) :].lstrip("/") if path.startswith(root) else path.rsplit("/", 1)[-1]
    pack = pack_of(path)
    members = members_of(fs, root, pack) if pack is not None else []
    return DamagedFile(f"{shown.rstrip('/')}/{rel}", reason, pack, members, shown.rstrip("/"))


# ---- finding the damaged file ---------------------------------------------------------------------
def parquet_problem(fs: pafs.FileSystem, path: str, size: int | None = None, whole: bool = False) -> str | None:
    """Why a Parquet file cannot be read, or None if it can: its footer (magic bytes, metadata), and
    with `whole` every data page too (every byte read: only to name a file after a read failed).
    A missing file is not damage (a part merged or cleaned up meanwhile): FileNotFoundError."""
    # a fragment given the listing's size: the footer in one ranged GET, no HEAD on an object store
    fragment = ds.ParquetFileFormat().make_fragment(path, fs, file_size=size)
    try:
        fragment.to_table() if whole else fragment.ensure_complete_metadata()
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError) as e:
        if not _is_damage(e):
            raise
        return f"not a readable Parquet file: {_short(e)}"
    return None


def _is_damage(e: BaseException) -> bool:
    """The file's bytes are wrong (pyarrow: ArrowInvalid, or OSError from a footer or page that does
    not deserialise), as opposed to the store failing to deliver them (network, permissions: an
    OSError too, raised as it is)."""
    text = str(e).lower()
    return isinstance(e, pa.ArrowInvalid) or any(w in text for w in ("thrift", "magic bytes", "corrupt", "deserial"))


def safetensors_problem(fs: pafs.FileSystem, path: str, size: int | None = None) -> str | None:
    """Why a safetensors file cannot be read, or None: its header (an 8-byte length, then JSON with
    each tensor's byte range) must parse, and the file must hold every byte the header promises
    (a truncated copy keeps its header). Reads only the header's bytes."""
    try:
        with fs.open_input_file(path) as f:
            size = f.size() if size is None else size
            if size < 8:
                return f"a safetensors file of {size} bytes has no header"
            length = int.from_bytes(f.read_at(8, 0), "little")
            if length <= 0 or 8 + length > size:
                return f"header of {length} bytes does not fit in the file's {size} bytes"
            header = json.loads(f.read_at(length, 8))
    except FileNotFoundError:
        raise
    except ValueError as e:  # not JSON, not UTF-8
        return f"unreadable safetensors header: {_short(e)}"
    if not isinstance(header, dict):
        return "safetensors header is not a JSON object"
    ends = [v.get("data_offsets", [0, 0])[1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    need = 8 + length + max(ends, default=0)
    if need != size:
        return (
            f"holds {size} bytes where its header promises {need} (cut short)"
            if size < need
            else f"holds {size} bytes where its header promises {need}"
        )
    return None


def first_problem(fs: pafs.FileSystem, files: Sequence[tuple[str, int | None]]) -> tuple[str, str] | None:
    """(path, reason) of the first damaged file among Parquet and safetensors files, after a read of
    them failed: footers and headers first (concurrently), then, if all read, every Parquet file whole."""
    problems = all_problems(fs, files)
    if problems:
        return problems[0]
    for path, size in files:
        try:
            reason = None if path.endswith(SNAPSHOT_SUFFIX) else parquet_problem(fs, path, size, whole=True)
        except FileNotFoundError:
            continue
        if reason is not None:
            return path, reason
    return None


def all_problems(fs: pafs.FileSystem, files: Sequence[tuple[str, int | None]]) -> list[tuple[str, str]]:
    """(path, reason) of every damaged file among these, in their order; files gone meanwhile are skipped."""

    def one(item: tuple[str, int | None]) -> str | None:
        path, size = item
        try:
            if path.endswith(SNAPSHOT_SUFFIX):
                return safetensors_problem(fs, path, size)
            return parquet_problem(fs, path, size)
        except FileNotFoundError:
            return None

    if fs.type_name == "local" or len(files) < 2:
        reasons = [one(f) for f in files]
    else:
        with ThreadPoolExecutor(min(CONCURRENT_READS, len(files))) as pool:
            reasons = list(pool.map(one, files))
    return [(path, reason) for (path, _), reason in zip(files, reasons, strict=True) if reason is not None]


def check_snapshot_files(fs: pafs.FileSystem, root: str, shown: str) -> None:
    """Raise DamagedFile for the first snapshot file of the sweep at `root` that cannot be read."""
    infos = fs.get_file_info(pafs.FileSelector(f"{root}/{SNAPSHOT_DIR}", allow_not_found=True))
    files = sorted(
        (i.path, i.size)
        for i in infos
        if i.type == pafs.FileType.File and PART_RE.match(i.base_name) and i.base_name.endswith(SNAPSHOT_SUFFIX)
    )
    found = first_problem(fs, files)
    if found is not None:
        raise damaged(fs, root, shown, *found)


def _short(e: BaseException) -> str:
    return str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
