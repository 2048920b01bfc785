"""Many small Parquet files as one pyarrow dataset, each file's footer read once.

Both readers of the results layout use it: analysis.load (whole tables) and sweeps.parquet
(`grok status`, planning); it lives in grokcore, the package both import, so that the writer
(sweeps) does not import the reader (analysis) for it. Only they import it: training never reads
Parquet, so pyarrow stays out of a process that only trains.

A finished sweep holds one file per pack and table, thousands at 100k members, and on an object
store every request is a round trip. So: each file's size comes from the directory listing
(pyarrow otherwise asks the store for it, a HEAD request per file);
each footer is read once, concurrently, and kept in its fragment, where the scan and row counts
find it (pyarrow's dataset factory reads every footer to unite the schemas, and the scan reads it
again); the scan then reads only the projected columns' bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

# footer reads in flight: an object store's latency, not the 2 local cores, is what they hide
CONCURRENT_READS = 16


def parquet_dataset(fs: pafs.FileSystem, files: Sequence[tuple[str, int | None]]) -> ds.FileSystemDataset:
    """(path, size in bytes or None) -> one dataset whose schema unites the files' columns.
    Raises what pyarrow raises for a file that is missing or not Parquet (FileNotFoundError,
    ArrowInvalid), and ArrowTypeError/ArrowInvalid for columns whose types cannot be united."""
    fmt = ds.ParquetFileFormat()
    fragments = [fmt.make_fragment(path, fs, file_size=size) for path, size in files]
    if fs.type_name == "local" or len(fragments) < 2:  # a local read is quicker than a thread hand-off
        for fragment in fragments:
            fragment.ensure_complete_metadata()
    else:
        with ThreadPoolExecutor(min(CONCURRENT_READS, len(fragments))) as pool:
            list(pool.map(lambda f: f.ensure_complete_metadata(), fragments))  # releases the GIL
    schemas = [f.physical_schema for f in fragments]
    schema = pa.unify_schemas(schemas, promote_options="permissive") if schemas else pa.schema([])
    return ds.FileSystemDataset(fragments, schema, fmt, fs)
