"""The one reading of a results location (grokcore/location.py), over the spellings users type."""

from pathlib import Path

import pyarrow.fs as pafs
import pytest

from grokcore.location import filesystem, is_uri, results_location, split_location, strip_file_scheme, sweep_uri


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path.resolve()


@pytest.mark.parametrize(
    "written, expected",
    [
        ("results", "{cwd}/results"),
        ("results/", "{cwd}/results"),
        ("./a/../results", "{cwd}/results"),
        ("~/results", "{cwd}/home/results"),
        ("file://{cwd}/results", "{cwd}/results"),
        ("file://{cwd}/results/", "{cwd}/results"),
        ("  {cwd}/results  ", "{cwd}/results"),
        ("s3://bucket/x", "s3://bucket/x"),
        ("s3://bucket/x/", "s3://bucket/x"),
        ("gs://bucket/a/b", "gs://bucket/a/b"),
    ],
)
def test_results_location_spells_each_location_one_way(in_tmp, written, expected):
    assert results_location(written.format(cwd=in_tmp)) == expected.format(cwd=in_tmp)
    assert is_uri(written.format(cwd=in_tmp)) == expected.startswith(("s3://", "gs://"))


def test_a_path_object_reads_as_its_text(in_tmp):
    assert results_location(Path("results")) == f"{in_tmp}/results"


def test_strip_file_scheme_keeps_the_rest_as_written():
    assert strip_file_scheme("file:///data/r") == "/data/r"
    assert strip_file_scheme("results") == "results"
    assert strip_file_scheme("~/r") == "~/r"
    assert strip_file_scheme("s3://b/r") == "s3://b/r"


def test_filesystem_of_local_spellings_is_the_local_disk_at_the_absolute_path(in_tmp):
    for written in ("results", "file://{cwd}/results/", "~/../results"):
        fs, path = filesystem(written.format(cwd=in_tmp))
        assert isinstance(fs, pafs.LocalFileSystem)
        assert path == f"{in_tmp}/results"


def test_filesystem_of_an_s3_uri_is_s3_at_bucket_and_key():
    # the region is given so that pyarrow asks no server for it: nothing here touches the network
    fs, path = filesystem("s3://bucket/x?region=us-east-1")
    assert fs.type_name == "s3"
    assert path == "bucket/x"


@pytest.mark.parametrize(
    "results, name, joined",
    [
        ("s3://bucket/r", "sweep", "s3://bucket/r/sweep"),
        ("s3://bucket/r/", "sweep", "s3://bucket/r/sweep"),
        ("file:///data/r", "sweep", "/data/r/sweep"),
        ("/data/r/", "sweep", "/data/r/sweep"),
    ],
)
def test_sweep_uri_joins_and_split_location_undoes_it(results, name, joined):
    assert sweep_uri(results, name) == joined
    assert split_location(joined) == (results_location(results), name)


def test_split_location_leaves_the_results_part_as_written():
    assert split_location("sweep") == (".", "sweep")
    assert split_location("runs/sweep/") == ("runs", "sweep")
    assert split_location("/sweep") == ("/", "sweep")
    assert split_location("s3://bucket/sweep") == ("s3://bucket", "sweep")
    assert split_location("") == (".", "")
