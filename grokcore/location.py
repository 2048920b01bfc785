"""Where results live: the one reading of a results location that every writer and reader shares.

A location is a local path (relative, absolute, `~`, `file://`), a shared mount, or a pyarrow
filesystem URI (s3://, gs://). It lives in grokcore, the package everyone may import, so that
sweeps (the writer), analysis (the reader) and grokcore's snapshot reader spell it one way.
pyarrow is imported only when a filesystem is asked for, so a notebook that only trains never
loads it.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow.fs as pafs

FILE_SCHEME = "file://"


def results_location(location: str | os.PathLike) -> str:
    """The one spelling of a results location that every process agrees on: a local path made
    absolute against THIS process's working directory (`~` expanded, `file://` stripped), or an
    object-store URI unchanged but for a trailing slash. The driver calls it once and hands the
    answer to every trial: a trial resolving `results` itself would do so inside Tune's trial
    directory, and its rows would land under Ray's session folder instead of where the user asked."""
    text = strip_file_scheme(location)
    if "://" in text:
        return text.rstrip("/")
    return str(Path(text).expanduser().resolve())


def strip_file_scheme(location: str | os.PathLike) -> str:
    """The location as written, `file://` taken off a local one (for messages and default folders
    that should read as the user typed them); results_location is the resolved form."""
    text = str(location).strip()
    return text[len(FILE_SCHEME):] if text.startswith(FILE_SCHEME) else text


def is_uri(location: str | os.PathLike) -> bool:
    """Whether the location is on an object store (not a local path, `file://` included)."""
    return "://" in results_location(location)


def filesystem(location: str | os.PathLike) -> tuple[pafs.FileSystem, str]:
    """A location -> (pyarrow filesystem, path on it); a local path comes back absolute."""
    import pyarrow.fs as pafs

    location = results_location(location)
    if "://" in location:
        fs, path = pafs.FileSystem.from_uri(_small_writes_in_one_request(location))
        return fs, path.rstrip("/")
    return pafs.LocalFileSystem(), location


def _small_writes_in_one_request(uri: str) -> str:
    """s3:// URIs open with allow_delayed_open, so a file smaller than one upload part (every
    record, most parts) goes up as one PutObject instead of a three-request multipart upload;
    S3-compatible servers such as moto's also mishandle completing a multipart upload of one part."""
    if uri.startswith("s3://") and "?" not in uri:
        return f"{uri}?allow_delayed_open=true"
    return uri


def sweep_uri(results: str | os.PathLike, name: str) -> str:
    """The folder of sweep `name` under a results location, resolved as results_location."""
    return f"{results_location(results)}/{name}"


def split_location(location: str | os.PathLike) -> tuple[str, str]:
    """`<results>/<name>` (path or URI) -> (results, name): sweep_uri's inverse. The results part
    is left as written (relative stays relative); resolve it with results_location."""
    text = str(location).rstrip("/")
    if "://" in text:
        scheme, rest = text.split("://", 1)
        parent, _, name = rest.rpartition("/")
        return f"{scheme}://{parent}", name
    path = PurePosixPath(text)
    return str(path.parent), path.name
