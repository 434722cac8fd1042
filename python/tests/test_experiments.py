"""lipattn.sweep and lipattn.reproduce against `lipattn sweep` / `lipattn reproduce` on tiny specs, and
Ctrl-C: an interrupted sweep keeps the records it wrote, and a rerun resumes from them."""
import json
import os
import subprocess
import sys

import pytest

import lipattn
from conftest import ROOT, assert_json_equal, releases_gil

# Toy-head regime points: a few seconds of work in all.
SPEC = {"name": "tiny", "kind": "regime", "regime": "iid", "model": "toy", "d": 4, "radius": 2.0,
        "n": [2, 8, 32], "full_max": 32}


def records(path):
    with open(path) as f:
        return sorted((json.loads(line) for line in f), key=lambda r: json.dumps(r["job"], sort_keys=True))


def test_sweep_equals_cli(cli, tmp_path):
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(SPEC))
    run = subprocess.run([str(cli), "sweep", str(spec_file), "--out", str(tmp_path / "cli.jsonl"), "--jobs", "1"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    for spec in (SPEC, spec_file, str(spec_file)):  # a dict, or the path of a sweep file
        out = tmp_path / f"py-{type(spec).__name__}.jsonl"
        s = lipattn.sweep(spec, out, jobs=1, quiet=True)
        assert isinstance(s, lipattn.SweepSummary)
        assert (s.total, s.ran, s.skipped, s.failed) == (3, 3, 0, 0) and s.results == str(out)
        got, expected = records(out), records(tmp_path / "cli.jsonl")
        assert [r["job"] for r in got] == [r["job"] for r in expected]
        for g, e in zip(got, expected):
            assert_json_equal(g["result"], e["result"])
    again = lipattn.sweep(SPEC, out, quiet=True)  # a rerun skips every finished job
    assert (again.ran, again.skipped) == (0, 3)
    import numpy as np
    numpy_axis = lipattn.sweep(dict(SPEC, n=np.array([2, 8, 32]), d=np.int64(4)), out, quiet=True)
    assert (numpy_axis.ran, numpy_axis.skipped) == (0, 3)  # the same jobs


def test_sweep_progress_goes_to_stderr_and_quiet_silences_it(tmp_path):
    child = f"import lipattn, json; lipattn.sweep(json.loads({json.dumps(json.dumps(SPEC))!s}), {str(tmp_path / 'a.jsonl')!r}, jobs=1)"
    loud = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, env=os.environ)
    assert loud.returncode == 0, loud.stderr
    assert loud.stdout == "" and "lipattn: 3 jobs ran, 0 already done, 0 failed; results in" in loud.stderr
    quiet = subprocess.run([sys.executable, "-c", child.replace("jobs=1)", "jobs=1, quiet=True)").replace(
        "a.jsonl", "b.jsonl")], capture_output=True, text=True, env=os.environ)
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == ""


def test_sweep_errors_are_input_errors(tmp_path):
    with pytest.raises(lipattn.InputError, match="kind"):
        lipattn.sweep({"name": "t", "kind": "nope", "model": "toy", "n": [2]}, tmp_path / "x.jsonl")
    with pytest.raises(lipattn.InputError, match="cannot read the sweep file"):
        lipattn.sweep(tmp_path / "missing.json", tmp_path / "x.jsonl")
    with pytest.raises(lipattn.InputError, match="parallel"):
        lipattn.sweep(SPEC, tmp_path / "x.jsonl", parallel="both")


def test_reproduce_on_one_experiment_equals_cli(cli, tmp_path):
    args = ["--quick", "--only", "mf-iid-masked", "--jobs", "1"]
    run = subprocess.run([str(cli), "reproduce", "--out", str(tmp_path / "cli"), *args, "--no-progress"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    s = lipattn.reproduce(tmp_path / "py", quick=True, only=["mf-iid-masked"], jobs=1, quiet=True)
    assert isinstance(s, lipattn.ReproduceSummary)
    assert s.failed == 0 and s.ran == s.jobs > 0
    assert s.report_html == str(tmp_path / "py" / "report.html") and os.path.exists(s.report_html)
    # The paths the CLI prints, and the same numbers in the results and the fits.
    assert f"report: {tmp_path / 'cli' / 'report.html'}" in run.stdout
    got, expected = records(tmp_path / "py/results/mf-iid-masked.jsonl"), records(
        tmp_path / "cli/results/mf-iid-masked.jsonl")
    for g, e in zip(got, expected):
        assert_json_equal(g["result"], e["result"])
    with open(s.fits) as f, open(tmp_path / "cli/fits.json") as g:
        assert_json_equal(json.load(f), json.load(g))
    again = lipattn.reproduce(tmp_path / "py", only=["mf-iid-masked"], quiet=True, analyse_only=True)
    assert again.report_md == str(tmp_path / "py" / "report.md")


def test_gil_is_released_during_reproduce(tmp_path):
    assert releases_gil(lambda: lipattn.reproduce(tmp_path / "r", only=["mf-iid-masked"], jobs=1, quiet=True),
                        attempts=2)


def test_ctrl_c_stops_a_sweep_and_keeps_its_records(tmp_path):
    # Many jobs; SIGINT as soon as the first record is in the file (no timing: the watcher waits for it).
    out = tmp_path / "r.jsonl"
    spec = dict(SPEC, n=[512], samples=400, full_max=512)
    child = f"""
import json, os, signal, threading, time, lipattn
out = {str(out)!r}
def watch():
    while not (os.path.exists(out) and open(out).read().count("\\n") >= 1):
        time.sleep(0.005)
    os.kill(os.getpid(), signal.SIGINT)
threading.Thread(target=watch, daemon=True).start()
try:
    lipattn.sweep(json.loads({json.dumps(json.dumps(spec))}), out, jobs=1, quiet=True)
    print("finished")
except KeyboardInterrupt:
    print("interrupted")
"""
    run = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=600,
                         env=os.environ)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "interrupted"
    kept = records(out)  # every line a whole record
    assert 1 <= len(kept) < 400
    resumed = subprocess.run([sys.executable, "-c", f"""
import json, lipattn
s = lipattn.sweep(json.loads({json.dumps(json.dumps(dict(spec, samples=len(kept) + 1)))}), {str(out)!r}, quiet=True)
print(s.skipped, s.ran)
"""], capture_output=True, text=True, env=os.environ, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.split() == [str(len(kept)), "1"]
