"""Test set-up: two host CPU devices and LLVM's quick code generation (both set before JAX
starts) and the real data's location."""

import gc
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

from fcn_iou_jax import cli


def known_xla_flags(flags: list[str]) -> list[str]:
  """The ``flags`` this jaxlib's XLA knows, each tried in a fresh process on the CPU alone (no
  accelerator started). XLA ends a process whose XLA_FLAGS name a flag it does not know (exit
  1, its one line lost under pytest's output capture), and flags come and go between XLA
  releases."""
  def accepted(candidate):
    probe = subprocess.run([sys.executable, "-c", "import jax; jax.devices()"],
                           env={**os.environ, "XLA_FLAGS": " ".join(candidate),
                                "JAX_PLATFORMS": "cpu"},
                           capture_output=True, check=False)
    return probe.returncode == 0
  return flags if accepted(flags) else [flag for flag in flags if accepted([flag])]


# The tests compile many small programs and run each a few times: XLA:CPU's LLVM back end at
# optimisation level 0 and its older loop emitters instead of the MLIR fusion emitters compile
# them several times faster (a small train step: 12.4 s at level 0 alone, 4.0 s with both;
# the same programs, slower machine code). Set in the environment, so that the scripts the
# tests start inherit them; a flag the user set wins, a flag this XLA does not know is left
# out.
if "PYTEST_XDIST_WORKER" not in os.environ:  # the workers inherit the variable
  cli.add_xla_flags(known_xla_flags(["--xla_backend_optimization_level=0",
                                     "--xla_cpu_use_fusion_emitters=false"]))

# One XLA compilation cache for the whole session, its workers and the scripts they start: a
# step the tests build again (each run builds its own) is compiled once. Made by the process
# that starts the session (the workers inherit the variable), removed when it ends; a cache
# the user set is used instead.
OWN_CACHE = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  OWN_CACHE = os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(
      prefix="fcn_iou_jax_test_xla_")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")

import jax  # pylint: disable=wrong-import-position
import pytest  # pylint: disable=wrong-import-position

jax.config.update("jax_num_cpu_devices", 2)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The real-data tests read a folder holding camvid/ (the SegNet copy) and voc/VOCdevkit/VOC2012.
TEST_DATA = pathlib.Path(os.environ.get(
    "FCN_IOU_TEST_DATA", pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"))
CAMVID_DIR = TEST_DATA / "camvid"
VOC_DIR = TEST_DATA / "voc"


@pytest.fixture
def camvid_dir():
  if not (CAMVID_DIR / "train.txt").exists():
    pytest.skip(f"real CamVid not found at {CAMVID_DIR} (set FCN_IOU_TEST_DATA to the folder "
                "holding camvid/)")
  return CAMVID_DIR


@pytest.fixture
def voc_dir():
  if not (VOC_DIR / "VOCdevkit" / "VOC2012").exists():
    pytest.skip(f"real VOC2012 copy not found at {VOC_DIR} (set FCN_IOU_TEST_DATA to the folder "
                "holding voc/VOCdevkit/VOC2012)")
  return VOC_DIR


def pytest_unconfigure(config):
  del config
  if OWN_CACHE:
    shutil.rmtree(OWN_CACHE, ignore_errors=True)


def pytest_sessionfinish(session, exitstatus):
  """An xdist worker's objects left at the end are frozen out of the garbage collector:
  pytest's last collections (five, over about a million objects, each running JAX's
  collection callback) otherwise outlast the 5 s execnet gives a worker to end, after which
  execnet sends it a SIGINT and a KeyboardInterrupt traceback follows the results."""
  del session, exitstatus
  if "PYTEST_XDIST_WORKER" in os.environ:
    gc.freeze()
