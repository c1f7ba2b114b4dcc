"""The harness: interleaving order of --compare, batch handling, and the report it builds."""

from __future__ import annotations

import json

import pytest

from edgereid.benchmarks.harness import compare_interleaved, measure, parse_target_spec
from edgereid.benchmarks.report import check_report_path, to_markdown, write_outputs
from edgereid.benchmarks.run import parse_batch_sizes, run_targets
from edgereid.errors import InputError
from edgereid.lazy import available


class FakeTarget:
    """Records every call in a shared log; each call 'takes' ``cost`` seconds of a fake clock."""

    def __init__(self, name, log, clock, cost):
        self.name, self.log, self.clock, self.cost = name, log, clock, cost
        self.setup_sizes = None
        self.torn_down = False
        self.memory = {}

    def setup(self, batch_sizes):
        self.setup_sizes = list(batch_sizes)

    def run(self, batch_size):
        self.log.append((self.name, batch_size))
        self.clock.now += self.cost * batch_size

    def teardown(self):
        self.torn_down = True

    def describe(self):
        return {"name": self.name}


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_compare_interleaves_a_b_a_b():
    log, clock = [], FakeClock()
    a, b = FakeTarget("A", log, clock, 0.002), FakeTarget("B", log, clock, 0.001)
    pairs = compare_interleaved(a, b, [1, 4], warmup=2, iters=3, clock=clock)
    # per batch size: 2 warm-up pairs then 3 timed pairs, always A then B
    expected = [(n, 1) for _ in range(5) for n in ("A", "B")] + [(n, 4) for _ in range(5) for n in ("A", "B")]
    assert log == expected
    ta, tb = pairs[4]
    assert ta == pytest.approx([0.008] * 3) and tb == pytest.approx([0.004] * 3)


def test_measure_times_only_the_timed_calls():
    log, clock = [], FakeClock()
    t = FakeTarget("A", log, clock, 0.001)
    out = measure(t, [2], warmup=4, iters=5, clock=clock)
    assert len(log) == 9 and out[2] == pytest.approx([0.002] * 5)


def test_run_targets_compare_report(tmp_path):
    log, clock = [], FakeClock()
    a, b = FakeTarget("A", log, clock, 0.004), FakeTarget("B", log, clock, 0.001)
    rep = run_targets([a, b], [1, 2], warmup=1, iters=4, tegrastats=False, peak_probe=False, clock=clock)
    assert a.setup_sizes == [1, 2] and a.torn_down and b.torn_down
    assert rep["mode"] == "compare"
    r = rep["compare"]["by_batch"]["2"]
    assert r["time_ratio_median"] == pytest.approx(0.25) and r["speedup_median"] == pytest.approx(4.0)
    assert r["time_ratio_iqr"] == pytest.approx(0.0) and r["n_pairs"] == 4
    assert rep["latency"]["A"]["2"]["p50_ms"] == pytest.approx(8.0)
    assert rep["latency"]["B"]["1"]["throughput_crops_per_s"] == pytest.approx(1000.0)
    assert rep["samples_ms"]["B"]["2"] == pytest.approx([2.0] * 4)
    md = to_markdown(rep)
    assert "| A | 2 | 8.00 |" in md and "| 2 | 0.250 |" in md
    written = write_outputs(rep, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["schema"] == "edgereid.reid_bench/1"
    if available("matplotlib"):
        assert [p.name for p in written] == ["r.json", "r.md", "r.png"]
        assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    else:  # a car without matplotlib still gets the JSON and markdown report
        assert [p.name for p in written] == ["r.json", "r.md"]


def test_same_names_get_a_b_suffixes():
    log, clock = [], FakeClock()
    a, b = FakeTarget("x:ort", log, clock, 0.001), FakeTarget("x:ort", log, clock, 0.001)
    rep = run_targets([a, b], [1], warmup=0, iters=1, tegrastats=False, peak_probe=False, clock=clock)
    assert set(rep["latency"]) == {"x:ort (A)", "x:ort (B)"}


def test_teardown_runs_when_a_run_fails():
    class Boom(FakeTarget):
        def run(self, batch_size):
            raise RuntimeError("boom")

    log, clock = [], FakeClock()
    t = Boom("A", log, clock, 0.001)
    with pytest.raises(RuntimeError):
        run_targets([t], [1], warmup=0, iters=1, tegrastats=False, peak_probe=False, clock=clock)
    assert t.torn_down


@pytest.mark.parametrize(("text", "expected"), [("1,4,8", [1, 4, 8]), ("2", [2]), ("1, 4", [1, 4])])
def test_parse_batch_sizes(text, expected):
    assert parse_batch_sizes(text) == expected


@pytest.mark.parametrize("text", ["0", "a,b", "", "-1,2"])
def test_parse_batch_sizes_rejects(text):
    with pytest.raises(InputError, match="--batch"):
        parse_batch_sizes(text)


def test_bad_warmup_iters():
    log, clock = [], FakeClock()
    with pytest.raises(InputError, match="iters"):
        measure(FakeTarget("A", log, clock, 0.001), [1], warmup=0, iters=0, clock=clock)


def test_target_spec(tmp_path):
    assert parse_target_spec("b/dir:ort-int8") == ("b/dir", "ort-int8")
    assert parse_target_spec("b/dir") == ("b/dir", "ort")
    odd = tmp_path / "a:b"
    odd.mkdir()
    assert parse_target_spec(str(odd)) == (str(odd), "ort")  # an existing dir wins


def test_check_report_path(tmp_path):
    assert check_report_path(None) is None
    assert check_report_path(tmp_path / "r.json") == tmp_path / "r.json"
    with pytest.raises(InputError, match="not an existing directory"):
        check_report_path(tmp_path / "missing" / "r.json")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match="not an existing directory"):
        check_report_path(tmp_path / "afile" / "r.json")
    with pytest.raises(InputError, match="directory"):
        check_report_path(tmp_path)


def test_backend_options_threads_reach_onnxruntime_only():
    from edgereid.benchmarks.harness import backend_options

    assert backend_options("ort", 2) == {"threads": 2}
    assert backend_options("ort-int8", 1) == {"threads": 1}
    assert backend_options("trt", 2) == {}  # TensorRT's runner takes no thread count
    assert backend_options("bpu", None) == {}


def test_crop_taking_runner_is_timed_through_embed(tmp_path):
    """A runner that overrides embed (as the X3 BPU does: NV12 bytes, no float batch) gets crops."""
    import numpy as np

    from edgereid.benchmarks.harness import EmbedderTarget
    from edgereid.bundle import Manifest, write_manifest
    from edgereid.preprocess import PreprocessSpec
    from edgereid.runtime.embedder import EmbedderRunner, register_backend

    seen = []

    class CropRunner(EmbedderRunner):
        def embed(self, crops_bgr):
            seen.append(len(crops_bgr))
            return np.ones((len(crops_bgr), 4), np.float32)

        def infer_impl(self, batch):
            raise AssertionError("float batches must not reach this runner")

    register_backend("test-crops", lambda bundle, **o: CropRunner(bundle.preprocess, **o))
    (tmp_path / "m.bin").write_bytes(b"x")
    write_manifest(tmp_path, Manifest(arch="onnx", target="x3", precision="int8", preprocess=PreprocessSpec(16, 8),
                                      inputs=[], outputs=[], files={"x3_bin": "m.bin"},
                                      extra={"x3": {"core_num": 2, "input_type_rt": "nv12", "march": "bernoulli2"}}))
    target = EmbedderTarget(tmp_path, "test-crops")
    out = measure(target, [1, 3], warmup=0, iters=2) if target.setup([1, 3]) is None else None
    target.teardown()
    assert seen == [1, 1, 3, 3] and len(out[3]) == 2
    info = target.describe()
    assert info["timed"].startswith("embed(crops)")
    assert info["x3"] == {"core_num": 2, "input_type_rt": "nv12"}
