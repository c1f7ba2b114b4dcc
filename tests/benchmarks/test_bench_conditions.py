"""Conditions recorder: the Jetson text formats and the host record."""

from __future__ import annotations

from edgereid.benchmarks.conditions import collect_conditions, parse_nv_tegra_release, parse_nvpmodel
from edgereid.benchmarks.limits import count_onnx_macs


def test_nv_tegra_release_jetpack5():
    text = ("# R35 (release), REVISION: 3.1, GCID: 32827747, BOARD: t186ref, EABI: aarch64, "
            "DATE: Sun Mar 19 15:19:21 UTC 2023")
    assert parse_nv_tegra_release(text) == {"l4t": "35.3.1", "jetpack": "5.1.1", "gcid": "32827747",
                                            "board": "t186ref"}


def test_nv_tegra_release_two_part_revision():
    text = "# R35 (release), REVISION: 1, GCID: 1, BOARD: t186ref, EABI: aarch64, DATE: x"
    assert parse_nv_tegra_release(text)["l4t"] == "35.1.0"
    assert parse_nv_tegra_release("something else") is None


def test_nvpmodel_query():
    text = "NVPM WARN: fan mode is not set!\nNV Power Mode: MODE_30W_ALL\n3\n"
    assert parse_nvpmodel(text) == {"name": "MODE_30W_ALL", "id": 3}
    assert parse_nvpmodel("NV Power Mode: MAXN\n0\n") == {"name": "MAXN", "id": 0}
    assert parse_nvpmodel("garbage") is None


def test_host_conditions_have_the_basics():
    c = collect_conditions()
    assert c["logical_cpus"] >= 1 and c["python"].count(".") == 2
    assert "numpy" in c["libraries"]
    assert c["jetson"] is None  # this host is not a Jetson


def test_count_macs_of_a_tiny_conv_and_gemm(tmp_path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    # Conv 3->8, 3x3, pad 1 on 1x3x16x8: 8*16*8 outputs x 3*3*3 = 27648 MACs; Gemm 8*16*8=1024 -> 10: 10240
    w = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "w")
    g = numpy_helper.from_array(np.zeros((10, 1024), np.float32), "g")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Flatten", ["c"], ["f"]),
        helper.make_node("Gemm", ["f", "g"], ["y"], transB=1),
    ]
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], [w, g])
    path = tmp_path / "t.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    assert count_onnx_macs(path) == 27648 + 10240
    assert count_onnx_macs(path, batch=2) == 2 * (27648 + 10240)


def test_cpu_isa_from_cpuinfo():
    from edgereid.benchmarks.conditions import cpu_isa, parse_cpu_isa

    avx2 = "processor\t: 0\nflags\t\t: fpu sse4_1 avx avx2 fma bmi2\n"
    vnni = "flags\t\t: fpu avx2 avx512f avx512bw avx512_vnni\n"
    alder = "flags\t\t: fpu avx2 avx_vnni\n"
    arm = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes crc32 atomics fphp asimdhp asimddp\n"
    carmel = "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\n"  # an Armv8.0 core (X3: A53)
    assert parse_cpu_isa(avx2) == {"isa": "avx2", "flags": ["avx2"], "u8s8_saturates": True}
    assert parse_cpu_isa(vnni)["isa"] == "avx512_vnni" and not parse_cpu_isa(vnni)["u8s8_saturates"]
    assert parse_cpu_isa(alder)["isa"] == "avx_vnni"
    assert parse_cpu_isa(arm, "aarch64")["isa"] == "asimddp"
    assert parse_cpu_isa(carmel, "aarch64")["isa"] == "neon"
    assert parse_cpu_isa("", "x86_64") == {"isa": None, "flags": [], "u8s8_saturates": None}
    c = collect_conditions()
    assert c["cpu_isa"] == cpu_isa()
    # the INT8 session option the embedder adds is named with the conditions: present iff u8s8 saturates
    assert bool(c["ort_int8_session_config"]) == bool(cpu_isa()["u8s8_saturates"] or
                                                      (cpu_isa()["isa"] is None and c["machine"] == "x86_64"))
