"""The command line, run as a user runs it: `python -m speechsearch ...` in a subprocess."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from speechsearch.cli import build_parser, mmss

from conftest import CALL_FILES, LIBRIVOX, ROOT


def run(*args, env=None, cwd=None):
    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "speechsearch", *map(str, args)], capture_output=True,
                          text=True, env=e, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rec")
    shutil.copy(CALL_FILES["refund"], folder / "refund.mp3")
    shutil.copy(LIBRIVOX, folder / "book.flac")
    (folder / "broken.wav").write_text("not audio")
    index = tmp_path_factory.mktemp("cli") / "cli.idx"
    out = run("add", folder, "--index", index, "--meta", "agent=A12", "--meta", "queue=billing")
    return folder, index, out


def test_add_reports_progress_summary_and_failures(cli_index):
    folder, index, out = cli_index
    assert out.returncode == 1  # one file failed
    assert "added 2 file(s)" in out.stdout and "failed 1" in out.stdout
    assert f"{folder / 'broken.wav'}: not a readable audio file" in out.stdout
    assert "s audio" in out.stderr and "refund.mp3" in out.stderr  # progress bar in seconds of audio


def test_search_readable_and_json(cli_index):
    folder, index, _ = cli_index
    out = run("search", "customer was billed two times", "-k", "2", "--index", index)
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    assert re.match(r"\s*1\. \d\.\d{3}  .*refund\.mp3  \d\d:\d\d-\d\d:\d\d  \(text \d\.\d{3}", first), first
    out = run("search", "customer was billed two times", "-k", "2", "--json", "--index", index)
    hits = json.loads(out.stdout)
    assert hits[0]["path"] == str(folder / "refund.mp3")
    assert hits[0]["metadata"] == {"agent": "A12", "queue": "billing"}
    assert hits[0]["end"] > hits[0]["start"] >= 0


def test_index_from_environment_and_info(cli_index, tmp_path):
    _, index, _ = cli_index
    out = run("info", env={"SPEECHSEARCH_INDEX": str(index)}, cwd=tmp_path)
    assert out.returncode == 0 and "files:    2" in out.stdout and "tiny.en" in out.stdout
    info = json.loads(run("info", "--json", "--index", index).stdout)
    assert info["files"] == 2 and len(info["file_list"]) == 2


def test_default_index_is_in_the_working_directory(tmp_path):
    out = run("add", LIBRIVOX, "--no-progress", cwd=tmp_path, env={"SPEECHSEARCH_INDEX": ""})
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "speechsearch.idx" / "catalog.sqlite3").exists()
    out = run("remove", LIBRIVOX, cwd=tmp_path, env={"SPEECHSEARCH_INDEX": ""})
    assert out.stdout.strip() == "removed 1 file(s)"
    out = run("remove", LIBRIVOX, cwd=tmp_path, env={"SPEECHSEARCH_INDEX": ""})
    assert out.returncode == 2 and "not in the index" in out.stderr


def test_errors_are_messages_not_tracebacks(tmp_path):
    out = run("search", "  ", "--index", tmp_path / "e.idx")
    assert out.returncode == 2 and "query is empty" in out.stderr and "Traceback" not in out.stderr
    out = run("add", LIBRIVOX, "--meta", "novalue", "--index", tmp_path / "e.idx")
    assert out.returncode == 2 and "expected key=value" in out.stderr
    out = run("search", "refund", "--index", tmp_path / "e.idx")
    assert out.returncode == 0 and out.stdout.strip() == "no hits"


def test_search_audio_reindex_and_eval(cli_index, tmp_path):
    folder, index, _ = cli_index
    clip = tmp_path / "clip.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(LIBRIVOX), "-ss", "0.5", "-t", "3",
                    str(clip)], check=True)
    out = run("search-audio", clip, "-k", "1", "--json", "--index", index)
    assert out.returncode == 0, out.stderr
    (hit,) = json.loads(out.stdout)
    assert hit["path"] == str(folder / "book.flac") and {"text", "context", "lexical", "acoustic"} <= set(hit["scores"])
    out = run("reindex", "--acoustic", "--index", index)
    assert out.returncode == 0 and out.stdout.strip() == "added acoustic vectors to 0 file(s)"
    assert run("reindex", "--index", index).returncode == 2
    qrels = tmp_path / "qrels.json"
    qrels.write_text(json.dumps({"files": [{"file": str(folder / "refund.mp3")}, {"file": str(folder / "book.flac")}],
                                 "queries": [
        {"id": "t1", "type": "text", "kind": "intent", "query": "billed two times for one purchase",
         "relevant": [{"file": str(folder / "refund.mp3")}]},
        {"id": "a1", "type": "audio", "kind": "qbe", "clip": str(clip),
         "relevant": [{"file": str(folder / "book.flac"), "start": 0.0, "end": 5.3}]}]}))
    out = run("eval", qrels, "--index", index, "--compare", "--json")
    assert out.returncode == 0, out.stderr
    metrics = json.loads(out.stdout)["metrics"]
    assert metrics["fused"]["text"]["mrr"] == 1.0 and metrics["fused"]["audio"]["span_hit"] == 1.0
    assert set(metrics) == {"fused", "text", "context", "lexical", "acoustic"} and "text" not in metrics["acoustic"]
    out = run("eval", qrels, "--index", index)
    assert "| fused | text/intent | 1 | 1.000 |" in out.stdout


def test_mmss():
    assert [mmss(0), mmss(61.9), mmss(3725)] == ["00:00", "01:01", "1:02:05"]


def test_every_command_is_documented():
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    docs = (ROOT / "docs" / "cli.md").read_text()
    readme = (ROOT / "README.md").read_text()
    for name, sub in commands.items():
        assert f"speechsearch {name}" in docs, name
        for action in sub._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert flag in docs, (name, flag)
    assert "speechsearch search" in readme


def test_a_file_name_that_is_not_utf8_is_added_shown_and_removed(tmp_path):
    folder = tmp_path / "share"
    folder.mkdir()
    with open(os.path.join(os.fsencode(folder), b"caf\xe9.flac"), "wb") as out:  # latin-1 é
        out.write(LIBRIVOX.read_bytes())
    index = tmp_path / "u.idx"
    out = run("add", folder, "--index", index, "--no-progress", "--json")
    assert out.returncode == 0, out.stderr
    assert [r["path"] for r in json.loads(out.stdout)["added"]] == [str(folder / "caf\\xe9.flac")]
    out = run("search", "selfish and cold", "-k", "1", "--index", index)
    assert out.returncode == 0 and "caf\\xe9.flac" in out.stdout, out.stderr
    assert "caf\\xe9.flac" in run("info", "--index", index).stdout
    out = run("remove", os.path.join(str(folder), "caf\udce9.flac"), "--index", index)  # the name as ls gives it
    assert out.returncode == 0 and out.stdout.strip() == "removed 1 file(s)", out.stderr


def test_adding_a_folder_without_audio_fails_with_the_reason(tmp_path):
    (tmp_path / "empty").mkdir()
    out = run("add", tmp_path / "empty", "--index", tmp_path / "e.idx", "--no-progress")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"failed: {tmp_path / 'empty'}: no audio files" in out.stdout


def test_remove_a_customer_by_metadata_and_compact_leaves_nothing_on_disk(tmp_path):
    folder = tmp_path / "calls"
    folder.mkdir()
    refund = shutil.copy(CALL_FILES["refund"], folder / "refund.mp3")  # David Miller, order 47291
    shutil.copy(LIBRIVOX, folder / "book.flac")
    (folder / "calls.csv").write_text("path,customer_id\nrefund.mp3,C-1042\nbook.flac,C-7\n")
    index = tmp_path / "gdpr.idx"
    out = run("add", folder, "--manifest", folder / "calls.csv", "--index", index, "--no-progress")
    assert out.returncode == 0, out.stdout + out.stderr
    assert run("remove", "--index", index).returncode == 2  # nothing named: nothing removed
    out = run("remove", "--meta", "customer_id=C-1042", "--compact", "--index", index)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("removed 1 file(s)") and f"removed: {refund}" in out.stdout
    assert "compacted:" in out.stdout
    hits = json.loads(run("search", "Miller order 47291", "--json", "--index", index).stdout)
    assert hits and all(h["path"] != str(refund) for h in hits)
    for f in index.rglob("*"):  # the catalogue, Chroma's database and its HNSW files
        if f.is_file():
            data = f.read_bytes().lower()
            for word in (b"miller", b"47291", b"coffee machine", b"c-1042", b"refund.mp3"):
                assert word not in data, (str(f), word)
    out = run("remove", "--where", '{"customer_id": "C-1042"}', "--json", "--index", index)
    assert out.returncode == 0 and json.loads(out.stdout)["files"] == []
