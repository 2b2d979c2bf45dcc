"""--dtype=auto: bfloat16 on a CPU with AMX or on an accelerator, float32 elsewhere."""

import pytest

from fcn_iou_jax import precision

AMX_CPU = "processor\t: 0\nflags\t\t: fpu avx512f amx_bf16 amx_tile amx_int8\n"
PLAIN_CPU = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n"


def _backend_never_asked():
  raise AssertionError("JAX's backend was asked for (it starts JAX)")


@pytest.mark.parametrize("cpu,backend,expected", [
    (AMX_CPU, _backend_never_asked, "bfloat16"),
    (PLAIN_CPU, lambda: "cpu", "float32"),
    (PLAIN_CPU, lambda: "gpu", "bfloat16"),
    (PLAIN_CPU, lambda: "tpu", "bfloat16"),
    (None, lambda: "cpu", "float32"),  # no /proc/cpuinfo (macOS): asks the backend
])
def test_auto_picks_bfloat16_where_the_hardware_multiplies_it(tmp_path, cpu, backend,
                                                               expected):
  cpuinfo = tmp_path / "cpuinfo"
  if cpu is not None:
    cpuinfo.write_text(cpu)
  dtype, why = precision.resolve("auto", backend, cpuinfo=str(cpuinfo))
  assert dtype == expected and why


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_a_set_dtype_is_kept_without_asking_the_hardware(tmp_path, dtype):
  (tmp_path / "cpuinfo").write_text(AMX_CPU)
  assert precision.resolve(dtype, _backend_never_asked,
                           cpuinfo=str(tmp_path / "cpuinfo"))[0] == dtype


@pytest.mark.parametrize("backend,told", [(lambda: "cpu", True), (lambda: "gpu", False)])
def test_a_set_bfloat16_where_auto_is_float32_says_so(tmp_path, backend, told):
  (tmp_path / "cpuinfo").write_text(PLAIN_CPU)
  dtype, why = precision.resolve("bfloat16", backend, cpuinfo=str(tmp_path / "cpuinfo"))
  assert dtype == "bfloat16"
  if told:
    assert precision.NO_AMX in why and "--dtype=auto picks" in why
  else:
    assert why == ""
