"""The optimised model computes the same function as a plain reference FCN-32s.

The reference below uses the textbook primitives (grouped ``conv_general_dilated``,
``reduce_window`` max pooling, LRN by shifted slices, a 64x64 bilinear transposed
convolution and a crop), so layout tricks in ``models`` (im2col, split groups, band-matmul
LRN, strided-maxima pooling, matrix upsampling) are checked on logits and on gradients.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fcn_iou_jax import losses, models, upsample
from fcn_iou_jax.kernels import mixed_precision

pytestmark = pytest.mark.slow  # full-network compiles


def _conv(x, layer, *, stride=1, pad=0, groups=1):
  y = jax.lax.conv_general_dilated(x, layer["kernel"], (stride, stride), [(pad, pad)] * 2,
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                   feature_group_count=groups)
  return y + layer["bias"]


def _lrn(x, size=5, alpha=1e-4, beta=0.75, k=1.0):
  padded = jnp.pad(jnp.square(x), [(0, 0)] * 3 + [(size // 2, size // 2)])
  window = sum(padded[..., i:i + x.shape[-1]] for i in range(size))
  return x / (k + alpha / size * window) ** beta


def _pool(x):
  extra = [(-(-(n - 3) // 2)) * 2 + 3 - n for n in x.shape[1:3]]  # ceil mode
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1),
                               [(0, 0), (0, extra[0]), (0, extra[1]), (0, 0)])


def reference_logits(params, images, backbone):
  x = images
  for index, spec in enumerate(models.BACKBONES[backbone]):
    pad = spec.pad + (models.INPUT_PAD if index == 0 else 0)
    x = jax.nn.relu(_conv(x, params[spec.name], stride=spec.stride, pad=pad,
                          groups=spec.groups))
    x = _lrn(x) if spec.lrn else x
    x = _pool(x) if spec.pool else x
  x = jax.nn.relu(_conv(x, params["fc6"]))
  x = jax.nn.relu(_conv(x, params["fc7"]))
  scores = _conv(x, params["score"])
  full = jax.lax.conv_transpose(scores, jnp.asarray(upsample.bilinear_kernel(64, 1)), (32, 32),
                                "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  offset = 18 if backbone == "caffe" else 20  # from Caffe-style coordinate maps (see geometry)
  height, width = images.shape[1:3]
  return full[:, offset:offset + height, offset:offset + width, 0]


@pytest.mark.parametrize("backbone,conv_forms,wide_fc_form", [
    ("caffe", "tuned", False), ("torchvision", "tuned", False), ("caffe", "native", False),
    ("caffe", "tuned", True)])
def test_logits_and_gradients_match_the_plain_reference(backbone, conv_forms, wide_fc_form,
                                                         monkeypatch):
  if wide_fc_form:  # fc6's and fc7's 512 outputs take the gradient forms of 4096
    monkeypatch.setattr(mixed_precision, "WIDE_OUTPUT", 512)
    monkeypatch.setattr(mixed_precision, "SERIAL_MIN_ROWS", 1)
    monkeypatch.setattr(mixed_precision, "transposed_copy_pays", lambda: True)
  model = models.FCN32s(backbone=backbone, width_mult=0.125, dropout_rate=0.0,
                        conv_forms=conv_forms)
  params = models.init_params(model, jax.random.key(0))
  params["score"]["kernel"] = jax.random.normal(jax.random.key(1),
                                                params["score"]["kernel"].shape)
  scale = 50.0 if backbone == "caffe" else 1.0
  images = scale * jax.random.normal(jax.random.key(2), (2, 45, 61, 3))
  labels = (jax.random.uniform(jax.random.key(3), (2, 45, 61)) < 0.3).astype(jnp.float32)
  fast = jax.jit(model.apply)({"params": params}, images)
  reference = jax.jit(reference_logits, static_argnums=2)(params, images, backbone)
  np.testing.assert_allclose(fast, reference, rtol=1e-4,
                             atol=1e-4 * float(jnp.abs(reference).max()))

  fast_grads = jax.jit(jax.grad(lambda p: losses.soft_iou_loss_from_logits(
      model.apply({"params": p}, images), labels)))(params)
  reference_grads = jax.jit(jax.grad(lambda p: losses.soft_iou_loss_from_logits(
      reference_logits(p, images, backbone), labels)))(params)
  for name in params:
    for leaf in ("kernel", "bias"):
      expected = np.asarray(reference_grads[name][leaf])
      np.testing.assert_allclose(fast_grads[name][leaf], expected, rtol=2e-3,
                                 atol=2e-3 * np.abs(expected).max() + 1e-12,
                                 err_msg=f"{name}/{leaf}")


def _relative_error(value, expected):
  return float(np.linalg.norm(np.asarray(value) - expected) / (np.linalg.norm(expected) + 1e-30))


def _cosine(value, expected):
  value, expected = np.ravel(value), np.ravel(expected)
  return float(value @ expected / (np.linalg.norm(value) * np.linalg.norm(expected) + 1e-30))


@pytest.mark.parametrize("conv_forms,native", [("tuned", True), ("tuned", False),
                                               ("native", True)])
def test_bfloat16_convolutions_keep_the_function_within_their_rounding(conv_forms, native,
                                                                        monkeypatch):
  """bfloat16 operands (float32 accumulation): logits within 2%, gradients point the same way,
  in the tuned forms (patches x mixed-precision matmul, or float32 products of the rounded
  operands where bfloat16 is not multiplied natively) and the native ones.

  Per-element gradient errors grow towards conv1 (a rounded activation can move a max-pool's
  argmax or a ReLU's sign), so gradients are compared by direction and norm. Logits are kept
  O(1): on a saturated sigmoid any perturbation of the logits rescales the gradient.
  """
  monkeypatch.setattr(mixed_precision, "multiplies_natively",
                      lambda operand_dtype: native or operand_dtype == jnp.float32)
  model = models.FCN32s(width_mult=0.125, dropout_rate=0.0, dtype=jnp.bfloat16,
                        conv_forms=conv_forms)
  params = models.init_params(model, jax.random.key(0))
  params["score"]["kernel"] = 0.1 * jax.random.normal(jax.random.key(1),
                                                      params["score"]["kernel"].shape)
  images = 50.0 * jax.random.normal(jax.random.key(2), (2, 45, 61, 3))
  labels = (jax.random.uniform(jax.random.key(3), (2, 45, 61)) < 0.3).astype(jnp.float32)
  low = jax.jit(model.apply)({"params": params}, images)
  reference = np.asarray(jax.jit(reference_logits, static_argnums=2)(params, images, "caffe"))
  assert low.dtype == jnp.float32
  assert 1e-4 < _relative_error(low, reference) < 2e-2  # rounded, yet the same function

  low_grads = jax.jit(jax.grad(lambda p: losses.soft_iou_loss_from_logits(
      model.apply({"params": p}, images), labels)))(params)
  reference_grads = jax.jit(jax.grad(lambda p: losses.soft_iou_loss_from_logits(
      reference_logits(p, images, "caffe"), labels)))(params)
  for name in params:
    for leaf in ("kernel", "bias"):
      assert low_grads[name][leaf].dtype == jnp.float32
      expected = np.asarray(reference_grads[name][leaf])
      assert _cosine(low_grads[name][leaf], expected) > 0.97, f"{name}/{leaf}"
      assert _relative_error(low_grads[name][leaf], expected) < 0.3, f"{name}/{leaf}"
