"""Test set-up: two host CPU devices (set before JAX starts) and shared-data locations."""

import os
import pathlib

import jax

jax.config.update("jax_num_cpu_devices", 2)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # pylint: disable=wrong-import-position

SHARED_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
CAMVID_DIR = SHARED_DATA / "camvid"
VOC_DIR = SHARED_DATA / "voc"


@pytest.fixture
def camvid_dir():
  if not (CAMVID_DIR / "train.txt").exists():
    pytest.skip(f"real CamVid not found at {CAMVID_DIR}")
  return CAMVID_DIR


@pytest.fixture
def voc_dir():
  if not (VOC_DIR / "VOCdevkit" / "VOC2012").exists():
    pytest.skip(f"real VOC2012 copy not found at {VOC_DIR}")
  return VOC_DIR
