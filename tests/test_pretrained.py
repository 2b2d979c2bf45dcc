"""ImageNet AlexNet weights load with the right layout (checked against SciPy)."""

import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fcn_iou_jax import models, pretrained
from fcn_iou_jax.errors import UserError

import conv1_reference


def _synthetic_state(params, rng, *, fc6_kernel=6):
  """A torchvision-style state dict whose shapes fit ``params``, in torch layouts."""
  state = {}
  for name, key in pretrained.LAYER_KEYS.items():
    kh, kw, cin, cout = params[name]["kernel"].shape
    if name.startswith("conv"):
      state[f"{key}.weight"] = rng.normal(size=(cout, cin, kh, kw)).astype(np.float32)
    else:
      state[f"{key}.weight"] = rng.normal(size=(cout, cin * kh * kw)).astype(np.float32)
    state[f"{key}.bias"] = rng.normal(size=(cout,)).astype(np.float32)
  state["classifier.6.weight"] = np.zeros((1000, 4), np.float32)
  return state


@pytest.fixture(scope="module")
def model_and_params():
  model = models.FCN32s(backbone="caffe", width_mult=0.125)
  return model, models.init_params(model, jax.random.key(0))


@pytest.mark.slow
def test_conv1_output_equals_scipy_correlation(tmp_path, model_and_params):
  model, params = model_and_params
  rng = np.random.default_rng(0)
  state = _synthetic_state(params, rng)
  np.savez(tmp_path / "alexnet.npz", **state)
  loaded = pretrained.load_alexnet_into(params, pretrained.read_state_dict(
      str(tmp_path / "alexnet.npz")))
  image = rng.normal(size=(23, 29, 3)).astype(np.float32)
  _, state_vars = model.apply({"params": loaded}, jnp.asarray(image[None]),
                              capture_intermediates=lambda mdl, _: mdl.name == "conv1")
  conv1 = np.asarray(state_vars["intermediates"]["conv1"]["__call__"][0][0])
  weight, bias = state["features.0.weight"], state["features.0.bias"]
  filters_hwio = weight.transpose(2, 3, 1, 0)
  for out_channel in (0, 5, weight.shape[0] - 1):
    reference = conv1_reference.correlate_conv1(image, filters_hwio, bias, out_channel)
    np.testing.assert_allclose(conv1[..., out_channel],
                               conv1_reference.reached(reference, image.shape),
                               rtol=1e-4, atol=1e-3)


def test_fc6_surgery_equals_the_fully_connected_layer(model_and_params):
  _, params = model_and_params
  rng = np.random.default_rng(1)
  state = _synthetic_state(params, rng)
  loaded = pretrained.load_alexnet_into(params, state)
  pool5 = rng.normal(size=(6, 6, params["fc6"]["kernel"].shape[2])).astype(np.float32)
  as_conv = jax.lax.conv_general_dilated(pool5[None], loaded["fc6"]["kernel"], (1, 1), "VALID",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))[0, 0, 0]
  # torch flattens pool5 channel-first: [C, H, W].
  as_linear = state["classifier.1.weight"] @ pool5.transpose(2, 0, 1).reshape(-1)
  np.testing.assert_allclose(as_conv, as_linear, rtol=1e-4, atol=1e-3)


def test_mismatched_or_missing_keys_are_refused(model_and_params):
  _, params = model_and_params
  state = _synthetic_state(params, np.random.default_rng(2))
  wrong = dict(state, **{"features.3.weight": np.zeros((3, 3, 3, 3), np.float32)})
  with pytest.raises(UserError, match="features.3.weight"):
    pretrained.load_alexnet_into(params, wrong)
  missing = {k: v for k, v in state.items() if k != "classifier.4.bias"}
  with pytest.raises(UserError, match="classifier.4.bias"):
    pretrained.load_alexnet_into(params, missing)
  with pytest.raises(UserError, match="surprise"):
    pretrained.load_alexnet_into(params, dict(state, surprise=np.zeros(1)))


def test_unreadable_paths_are_user_errors(tmp_path):
  with pytest.raises(UserError, match="does not exist"):
    pretrained.read_state_dict(str(tmp_path / "nope.npz"))
  (tmp_path / "weights.bin").write_bytes(b"x")
  with pytest.raises(UserError, match="none of .npz"):
    pretrained.read_state_dict(str(tmp_path / "weights.bin"))
  (tmp_path / "text.npz").write_text("not an archive")
  with pytest.raises(UserError, match=r"text\.npz is not an \.npz of arrays"):
    pretrained.read_state_dict(str(tmp_path / "text.npz"))
  np.savez(tmp_path / "objects.npz", conv=np.array([{"a": 1}], dtype=object))
  with pytest.raises(UserError, match=r"objects\.npz is not an \.npz of arrays"):
    pretrained.read_state_dict(str(tmp_path / "objects.npz"))
  if importlib.util.find_spec("torch"):
    (tmp_path / "text.pth").write_text("not a state dict")
    with pytest.raises(UserError, match=r"text\.pth is not a torch state dict"):
      pretrained.read_state_dict(str(tmp_path / "text.pth"))
    (tmp_path / "noise.pth").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(UserError, match=r"noise\.pth is not a torch state dict"):
      pretrained.read_state_dict(str(tmp_path / "noise.pth"))


def test_export_then_load_gives_back_the_same_backbone(model_and_params):
  _, params = model_and_params
  trained = jax.tree_util.tree_map(lambda x: x + 0.5, params)
  reloaded = pretrained.load_alexnet_into(params, pretrained.export_alexnet_state(trained))
  for name in pretrained.LAYER_KEYS:
    np.testing.assert_array_equal(reloaded[name]["kernel"], trained[name]["kernel"])
  np.testing.assert_array_equal(reloaded["score"]["kernel"], params["score"]["kernel"])


def test_a_1x1_fc6_backbone_round_trips_and_is_refused_by_a_6x6_model(model_and_params):
  _, params_6x6 = model_and_params
  model_1x1 = models.FCN32s(backbone="caffe", width_mult=0.125, fc6_kernel=1)
  params_1x1 = models.init_params(model_1x1, jax.random.key(1))
  trained = jax.tree_util.tree_map(lambda x: x - 0.25, params_1x1)
  state = pretrained.export_alexnet_state(trained)
  reloaded = pretrained.load_alexnet_into(params_1x1, state)
  np.testing.assert_array_equal(reloaded["fc6"]["kernel"], trained["fc6"]["kernel"])
  with pytest.raises(UserError, match="classifier.1.weight has shape .* does not fit fc6"):
    pretrained.load_alexnet_into(params_6x6, state)
