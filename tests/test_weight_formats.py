"""MatConvNet .mat and Caffe .caffemodel AlexNet weights, made here in each source's own
conventions, convert and load: conv1 equals a SciPy correlation done the source's way, and the
whole model equals one loaded from the equivalent torchvision-key .npz."""

import dataclasses
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.io

from fcn_iou_jax import build, models, pretrained
from fcn_iou_jax.config import Config
from fcn_iou_jax.data import pipeline
from fcn_iou_jax.errors import UserError

import conv1_reference

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")
MEAN_RGB = np.array([122.5, 116.0, 104.5])


@pytest.fixture(scope="module")
def model_and_params():
  model = models.FCN32s(backbone="caffe", width_mult=0.0625)
  return model, models.init_params(model, jax.random.key(0))


def _hwio_weights(params, seed):
  """Random ``{name: (filters [h, w, in / groups, out], biases)}`` of the model's shapes."""
  rng = np.random.default_rng(seed)
  return {name: (rng.normal(size=params[name]["kernel"].shape).astype(np.float32) * 0.1,
                 rng.normal(size=params[name]["bias"].shape).astype(np.float32))
          for name in LAYERS}


def _torch_keys(hwio):
  """The torchvision-key state dict of HWIO weights (written here, not by the library)."""
  state = {}
  for name, key in pretrained.LAYER_KEYS.items():
    filters, biases = hwio[name]
    weight = filters.transpose(3, 2, 0, 1)  # [out, in, h, w]
    state[f"{key}.weight"] = weight.reshape(weight.shape[0], -1) if name[:2] == "fc" else weight
    state[f"{key}.bias"] = biases
  return state


def _write_simplenn(path, weights_rgb, *, old_fields=("conv3",)):
  """A MatConvNet simplenn file: conv1 takes RGB input; some layers in the older
  filters/biases form; ReLU layers without weights between them."""
  layers = []
  for name in LAYERS:
    filters, biases = weights_rgb[name]
    if name in old_fields:
      layers.append({"name": name, "type": "conv", "filters": filters, "biases": biases})
    else:
      cell = np.empty(2, dtype=object)
      cell[0], cell[1] = filters, biases
      layers.append({"name": name, "type": "conv", "weights": cell})
    layers.append({"name": f"relu_{name}", "type": "relu"})
  cells = np.empty(len(layers), dtype=object)
  cells[:] = layers
  average = np.broadcast_to(MEAN_RGB, (4, 5, 3)).astype(np.float32)
  scipy.io.savemat(path, {"layers": cells,
                          "meta": {"normalization": {"averageImage": average}}})


def _conv1_of(model, params, image_uint8, input_mean):
  normalised = pipeline.normalize_image(image_uint8, "caffe", input_mean).numpy()
  logits, state = model.apply({"params": params}, jnp.asarray(normalised[None]),
                              capture_intermediates=lambda mdl, _: mdl.name == "conv1")
  return np.asarray(state["intermediates"]["conv1"]["__call__"][0][0]), np.asarray(logits)


@pytest.mark.slow
def test_matconvnet_file_loads_with_rgb_input_and_its_mean(tmp_path, model_and_params):
  model, params = model_and_params
  weights_bgr = _hwio_weights(params, 0)
  weights_rgb = dict(weights_bgr, conv1=(weights_bgr["conv1"][0][:, :, ::-1, :],
                                         weights_bgr["conv1"][1]))
  _write_simplenn(tmp_path / "alex.mat", weights_rgb)
  state = pretrained.read_state_dict(str(tmp_path / "alex.mat"))
  mean = pretrained.input_mean(state)
  np.testing.assert_allclose(mean, MEAN_RGB[::-1], rtol=1e-6)
  loaded = pretrained.load_alexnet_into(params, state)
  image = np.random.default_rng(1).integers(0, 256, (37, 45, 3)).astype(np.uint8)
  conv1, logits = _conv1_of(model, loaded, image, mean)
  rgb_input = image.astype(np.float64) - MEAN_RGB  # MatConvNet: RGB minus averageImage
  filters, bias = weights_rgb["conv1"]
  for out_channel in (0, filters.shape[-1] - 1):
    reference = conv1_reference.correlate_conv1(rgb_input, filters, bias, out_channel)
    np.testing.assert_allclose(conv1[..., out_channel],
                               conv1_reference.reached(reference, image.shape),
                               rtol=1e-4, atol=2e-2)
  equivalent = pretrained.load_alexnet_into(params, _torch_keys(weights_bgr))
  _, expected_logits = _conv1_of(model, equivalent, image, mean)
  np.testing.assert_allclose(logits, expected_logits, rtol=1e-5, atol=1e-5)


def _varint(value):
  out = bytearray()
  while True:
    byte, value = value & 0x7F, value >> 7
    out.append(byte | (0x80 if value else 0))
    if not value:
      return bytes(out)


def _field(number, payload=None, *, varint=None):
  if varint is not None:
    return _varint(number << 3) + _varint(varint)
  return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _blob(array, *, legacy):
  data = _field(5, np.asarray(array, "<f4").tobytes())
  if legacy:  # num, channels, height, width (4-D, leading 1s)
    dims = (1,) * (4 - array.ndim) + array.shape
    return b"".join(_field(n, varint=d) for n, d in zip((1, 2, 3, 4), dims)) + data
  return _field(7, _field(1, b"".join(_varint(d) for d in array.shape))) + data


def _caffemodel(weights, *, legacy_names=("conv1", "conv2", "fc7"), extra=True):
  """A NetParameter: the named layers in the legacy ``layers`` field (V1, 4-D blobs), the
  others in ``layer`` (blob shapes), plus an fc8 and a ReLU without blobs."""
  net = _field(1, b"AlexNet")
  for name, (weight, bias) in weights.items():
    legacy = name in legacy_names
    blobs = _field(6 if legacy else 7, _blob(weight, legacy=legacy)) + _field(
        6 if legacy else 7, _blob(bias, legacy=legacy))
    if legacy:
      net += _field(2, _field(4, name.encode()) + _field(5, varint=4) + blobs)
    else:
      net += _field(100, _field(1, name.encode()) + _field(2, b"Convolution") + blobs)
  if extra:
    net += _field(100, _field(1, b"relu1") + _field(2, b"ReLU"))
    net += _field(100, _field(1, b"fc8") + _field(7, _blob(np.ones((3, 2)), legacy=False))
                  + _field(7, _blob(np.ones(3), legacy=False)))
  return net


@pytest.mark.slow
def test_caffemodel_loads_in_caffe_layout_with_bgr_input(tmp_path, model_and_params):
  model, params = model_and_params
  state = _torch_keys(_hwio_weights(params, 2))  # Caffe's blobs are torchvision's layout
  caffe_weights = {name: (state[f"{key}.weight"], state[f"{key}.bias"])
                   for name, key in pretrained.LAYER_KEYS.items()}
  (tmp_path / "alex.caffemodel").write_bytes(_caffemodel(caffe_weights))
  converted = pretrained.read_state_dict(str(tmp_path / "alex.caffemodel"))
  assert pretrained.input_mean(converted) is None  # a caffemodel carries no mean
  loaded = pretrained.load_alexnet_into(params, converted)
  image = np.random.default_rng(3).integers(0, 256, (37, 45, 3)).astype(np.uint8)
  conv1, logits = _conv1_of(model, loaded, image, None)
  bgr_input = image[..., ::-1].astype(np.float64) - np.array(pipeline.CAFFE_BGR_MEAN)
  weight, bias = caffe_weights["conv1"]  # [out, in, h, w]
  for out_channel in (0, weight.shape[0] - 1):
    reference = conv1_reference.correlate_conv1(bgr_input, weight.transpose(2, 3, 1, 0), bias,
                                                out_channel)
    np.testing.assert_allclose(conv1[..., out_channel],
                               conv1_reference.reached(reference, image.shape),
                               rtol=1e-4, atol=2e-2)
  _, expected_logits = _conv1_of(model, pretrained.load_alexnet_into(params, state), image, None)
  np.testing.assert_allclose(logits, expected_logits, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_unusable_files_are_named_in_one_line(tmp_path, model_and_params):
  _, params = model_and_params
  state = _torch_keys(_hwio_weights(params, 4))
  weights = {name: (state[f"{key}.weight"], state[f"{key}.bias"])
             for name, key in pretrained.LAYER_KEYS.items()}
  no_conv5 = {name: value for name, value in weights.items() if name != "conv5"}
  (tmp_path / "other.caffemodel").write_bytes(_caffemodel(no_conv5))
  with pytest.raises(UserError, match=r"other\.caffemodel: not a Caffe AlexNet .*conv5"):
    pretrained.read_state_dict(str(tmp_path / "other.caffemodel"))
  whole = _caffemodel(weights)
  (tmp_path / "cut.caffemodel").write_bytes(whole[:len(whole) // 2])
  with pytest.raises(UserError, match=r"cut\.caffemodel: not a readable caffemodel"):
    pretrained.read_state_dict(str(tmp_path / "cut.caffemodel"))
  _write_simplenn(tmp_path / "whole.mat", _hwio_weights(params, 5))
  data = (tmp_path / "whole.mat").read_bytes()
  (tmp_path / "cut.mat").write_bytes(data[:len(data) // 2])
  with pytest.raises(UserError, match=r"cut\.mat: not a readable MATLAB file"):
    pretrained.read_state_dict(str(tmp_path / "cut.mat"))
  header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5"
  (tmp_path / "new.mat").write_bytes(header.ljust(512, b"\0"))
  finished = subprocess.run(
      [sys.executable, os.path.join(REPO, "experiments", "convert_weights.py"),
       str(tmp_path / "new.mat"), str(tmp_path / "out.npz")],
      capture_output=True, text=True, timeout=120, cwd=REPO)
  assert finished.returncode == 2
  assert finished.stderr.strip().count("\n") == 0 and "MATLAB v7.3 (HDF5)" in finished.stderr
  assert not (tmp_path / "out.npz").exists()


@pytest.mark.slow
def test_convert_weights_writes_the_npz_that_init_reads(tmp_path, model_and_params):
  _, params = model_and_params
  weights_rgb = _hwio_weights(params, 6)
  _write_simplenn(tmp_path / "alex.mat", weights_rgb)
  finished = subprocess.run(
      [sys.executable, os.path.join(REPO, "experiments", "convert_weights.py"),
       str(tmp_path / "alex.mat"), str(tmp_path / "alex.npz")],
      capture_output=True, text=True, timeout=120, cwd=REPO)
  assert finished.returncode == 0, finished.stderr
  assert "with the BGR input mean (104.5, 116.0, 122.5)" in finished.stdout
  direct = pretrained.read_state_dict(str(tmp_path / "alex.mat"))
  converted = pretrained.read_state_dict(str(tmp_path / "alex.npz"))
  assert sorted(direct) == sorted(converted)
  for key, value in direct.items():
    np.testing.assert_array_equal(converted[key], value)


def test_a_run_takes_its_input_mean_from_the_weights(tmp_path, model_and_params):
  _, params = model_and_params
  _write_simplenn(tmp_path / "alex.mat", _hwio_weights(params, 7))
  base = Config(init=str(tmp_path / "alex.mat"), width_mult=0.0625)
  config, state = build.read_init_weights(base)
  np.testing.assert_allclose(config.input_mean, MEAN_RGB[::-1], rtol=1e-6)
  assert pretrained.INPUT_MEAN_KEY in state
  given = dataclasses.replace(base, input_mean=(1.0, 2.0, 3.0))
  assert build.read_init_weights(given)[0].input_mean == (1.0, 2.0, 3.0)  # a flag wins
  other_layout = dataclasses.replace(base, backbone="torchvision")
  assert build.read_init_weights(other_layout)[0].input_mean is None
