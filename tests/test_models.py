"""FCN-32s shapes, the fixed bilinear deconvolution, and the parameter count."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fcn_iou_jax import config, geometry, models, upsample

SIZES = [(375, 500), (500, 375), (333, 500), (360, 480), (37, 53)]


@pytest.fixture(scope="module")
def narrow_models():
  built = {}
  for backbone in ("caffe", "torchvision"):
    model = models.FCN32s(backbone=backbone, width_mult=0.0625)
    built[backbone] = (model, models.init_params(model, jax.random.key(0)))
  return built


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["caffe", "torchvision"])
@pytest.mark.parametrize("size", SIZES)
def test_output_matches_input_size(narrow_models, backbone, size):
  model, params = narrow_models[backbone]
  logits = jax.eval_shape(model.apply, {"params": params}, jnp.zeros((1, *size, 3)))
  assert logits.shape == (1, *size)


def test_multiclass_output_and_literal_1x1_fc6():
  model = models.FCN32s(width_mult=0.0625, num_classes=3, fc6_kernel=1)
  params = models.init_params(model, jax.random.key(0))
  assert params["fc6"]["kernel"].shape[:2] == (1, 1)
  logits = jax.eval_shape(model.apply, {"params": params}, jnp.zeros((2, 41, 67, 3)))
  assert logits.shape == (2, 41, 67, 3)


def test_command_line_choices_are_the_models_own():
  assert sorted(config.BACKBONE_NAMES) == sorted(models.BACKBONES)
  for fc6_kernel in config.FC6_KERNELS:
    model = models.FCN32s(width_mult=0.0625, fc6_kernel=fc6_kernel)
    params = jax.eval_shape(lambda key, m=model: models.init_params(m, key), jax.random.key(0))
    assert params["fc6"]["kernel"].shape[:2] == (fc6_kernel, fc6_kernel)


def test_crop_offset_is_derived_from_the_geometry():
  # Caffe AlexNet: x_img = 32 y + 13 at fc6; the deconvolution centre is 31.5 -> 18.5.
  layers = models.spatial_layers("caffe", 6)
  assert geometry.crop_offset(layers, 64, 32) == 18
  # A 1x1 fc6 shifts the centre back by 2.5 * 32 = 80 px.
  assert geometry.crop_offset(models.spatial_layers("caffe", 1), 64, 32) == 98


def test_fixed_deconvolution_is_bilinear_on_a_linear_ramp():
  rows = upsample.upsampling_matrix(12, 32, 64, offset=0, out_size=12 * 32)
  ramp = np.arange(12, dtype=np.float64)
  upsampled = rows @ ramp
  # Interior output z sits at input coordinate (z - 31.5) / 32: bilinear gives it exactly.
  interior = np.arange(32, 11 * 32)
  np.testing.assert_allclose(upsampled[interior], (interior - 31.5) / 32, atol=1e-6)


def test_matrix_upsampling_equals_the_transposed_convolution():
  scores = jax.random.normal(jax.random.key(1), (1, 5, 7, 1))
  kernel = upsample.bilinear_kernel(64, 1)
  full = jax.lax.conv_transpose(scores, jnp.asarray(kernel), (32, 32), "VALID",
                                dimension_numbers=("NHWC", "HWIO", "NHWC"))
  offset, height, width = 18, 100, 150
  rows = upsample.upsampling_matrix(5, 32, 64, offset, height)
  cols = upsample.upsampling_matrix(7, 32, 64, offset, width)
  matrix_form = np.einsum("zy,yx,wx->zw", rows, np.asarray(scores[0, ..., 0]), cols)
  np.testing.assert_allclose(matrix_form, full[0, offset:offset + height,
                                               offset:offset + width, 0], atol=1e-5)


@pytest.mark.slow
def test_learned_upsampling_starts_equal_to_the_fixed_one():
  fixed = models.FCN32s(width_mult=0.0625)
  learned = models.FCN32s(width_mult=0.0625, learn_upsampling=True)
  params = models.init_params(learned, jax.random.key(2))
  params["score"]["kernel"] = jax.random.normal(jax.random.key(3),
                                                params["score"]["kernel"].shape)
  images = jax.random.normal(jax.random.key(4), (1, 75, 90, 3))
  fixed_params = {k: v for k, v in params.items() if k != "upscore"}
  np.testing.assert_allclose(learned.apply({"params": params}, images),
                             fixed.apply({"params": fixed_params}, images), atol=1e-4)


def test_caffe_parameter_count_at_width_one():
  # Caffe AlexNet has 60,965,224 parameters with fc8 (4096*1000 + 1000); FCN-32s drops fc8
  # and adds the 1x1 scoring layer (4096 + 1); the fixed deconvolution has none.
  model = models.FCN32s()
  params = jax.eval_shape(lambda: models.init_params(model, jax.random.key(0)))
  count = sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(params))
  assert count == 60_965_224 - (4096 * 1000 + 1000) + (4096 + 1)


def test_grouped_conv_equals_feature_group_count():
  conv = models.Conv(8, 3, pad=1, groups=2)
  x = jax.random.normal(jax.random.key(5), (1, 9, 9, 6))
  params = conv.init(jax.random.key(6), x)
  reference = jax.lax.conv_general_dilated(
      x, params["params"]["kernel"], (1, 1), [(1, 1), (1, 1)],
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=2)
  np.testing.assert_allclose(conv.apply(params, x), reference + params["params"]["bias"],
                             atol=1e-5)


@pytest.mark.slow
def test_dropout_only_in_training():
  model = models.FCN32s(width_mult=0.0625)
  params = models.init_params(model, jax.random.key(0))
  params["score"]["kernel"] = jnp.ones_like(params["score"]["kernel"])
  images = jax.random.normal(jax.random.key(7), (1, 64, 64, 3))
  apply = jax.jit(model.apply, static_argnames="train")
  eval_a = apply({"params": params}, images)
  eval_b = apply({"params": params}, images)
  train = apply({"params": params}, images, train=True, rngs={"dropout": jax.random.key(8)})
  np.testing.assert_array_equal(eval_a, eval_b)
  assert not np.allclose(eval_a, train)
