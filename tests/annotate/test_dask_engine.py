"""`--engine dask` in Dask's local mode with 2 worker processes: the same output as the single-process run."""
import json

import pytest
from annotate_helpers import output_bytes, records, shard_files, tiny_pipeline, write_jsonl
from typer.testing import CliRunner

from electramed_spacy.cli import app

pytest.importorskip("distributed", reason="the dask extra is not installed: pip install 'electramed-spacy[dask]'")


def test_dask_local_cluster_two_workers_matches_single_process(tmp_path_factory, tmp_path):
    nlp_path = tiny_pipeline(tmp_path_factory)
    path = write_jsonl(tmp_path / "docs.jsonl", 60)
    common = ["annotate", str(nlp_path), str(path), "--shard-size", "7", "--quiet"]
    runner = CliRunner()
    result = runner.invoke(app, [*common[:3], str(tmp_path / "local"), *common[3:]])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, [*common[:3], str(tmp_path / "dask"), *common[3:], "--engine", "dask", "--workers", "2", "--threads", "1"])
    assert result.exit_code == 0, result.output

    by_id = sorted(output_bytes(tmp_path / "dask").splitlines(), key=lambda line: json.loads(line)["id"])
    assert b"\n".join(by_id) == b"\n".join(sorted(output_bytes(tmp_path / "local").splitlines(), key=lambda line: json.loads(line)["id"]))
    # shards complete out of order under Dask, but each shard holds the same records
    assert [p.read_bytes() for p in shard_files(tmp_path / "dask")] == [p.read_bytes() for p in shard_files(tmp_path / "local")]
    summary = json.loads((tmp_path / "dask" / "summary.json").read_text())
    assert (summary["engine"], summary["workers"], summary["documents"]) == ("dask", 2, 60)
    assert len(records(tmp_path / "dask")) == 60


def test_unreachable_scheduler_is_one_line(tmp_path_factory, tmp_path):
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        result = CliRunner().invoke(app, ["annotate", str(tiny_pipeline(tmp_path_factory)), str(write_jsonl(tmp_path / "d.jsonl", 2)),
                                          str(tmp_path / "out"), "--engine", "dask", "--address", "tcp://127.0.0.1:9", "--quiet"])
    assert result.exit_code == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.output
    assert len(result.output.strip().splitlines()) == 1
