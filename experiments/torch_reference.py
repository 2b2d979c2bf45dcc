"""The same FCN-32s/AlexNet (caffe layout) and soft-IoU loss in PyTorch, for benchmarks only.

Built from a JAX parameter tree so that both frameworks compute the same function; the
benchmark checks that (same weights -> same logits) before timing anything.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fcn_iou_jax import geometry, models, upsample


class TorchFCN32s(nn.Module):
  """FCN-32s/AlexNet, caffe layout, NCHW; ``forward(images [B,3,H,W]) -> logits [B,H,W]``."""

  def __init__(self, params):
    super().__init__()
    layers = []
    for index, spec in enumerate(models.BACKBONES["caffe"]):
      kernel = np.asarray(params[spec.name]["kernel"])
      conv = nn.Conv2d(kernel.shape[2] * spec.groups, kernel.shape[3], spec.kernel,
                       stride=spec.stride, groups=spec.groups,
                       padding=spec.pad + (models.INPUT_PAD if index == 0 else 0))
      _copy(conv, params[spec.name])
      layers += [conv, nn.ReLU(inplace=True)]
      if spec.lrn:
        layers.append(nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0))
      if spec.pool:
        layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
    for name in ("fc6", "fc7"):
      kernel = np.asarray(params[name]["kernel"])
      conv = nn.Conv2d(kernel.shape[2], kernel.shape[3], kernel.shape[0])
      _copy(conv, params[name])
      layers += [conv, nn.ReLU(inplace=True), nn.Dropout(0.5)]
    score = nn.Conv2d(np.asarray(params["score"]["kernel"]).shape[2], 1, 1)
    _copy(score, params["score"])
    layers.append(score)
    self.body = nn.Sequential(*layers)
    self.upscore = nn.ConvTranspose2d(1, 1, models.UPSAMPLE_KERNEL, models.UPSAMPLE_STRIDE,
                                      bias=False)
    self.upscore.weight.data = torch.from_numpy(
        upsample.bilinear_kernel(models.UPSAMPLE_KERNEL, 1).transpose(2, 3, 0, 1).copy())
    self.upscore.weight.requires_grad_(False)
    self.offset = geometry.crop_offset(models.spatial_layers("caffe", 6),
                                       models.UPSAMPLE_KERNEL, models.UPSAMPLE_STRIDE)

  def forward(self, images):
    height, width = images.shape[2:]
    full = self.upscore(self.body(images))
    return full[:, 0, self.offset:self.offset + height, self.offset:self.offset + width]


def _copy(conv: nn.Conv2d, layer):
  conv.weight.data = torch.from_numpy(np.asarray(layer["kernel"]).transpose(3, 2, 0, 1).copy())
  conv.bias.data = torch.from_numpy(np.asarray(layer["bias"]).copy())


def soft_iou_loss(logits, labels):
  """1 - I/U over the whole batch (Eq. 5), by autograd."""
  probs = torch.sigmoid(logits)
  intersection = (probs * labels).sum()
  union = (probs + labels - probs * labels).sum()
  return 1.0 - intersection / union


def make_train_step(model: TorchFCN32s, *, learning_rate=1e-4, momentum=0.99,
                    weight_decay=5e-4, autocast_dtype=None):
  """One SGD step ``step(images, labels) -> loss``; with ``autocast_dtype`` (e.g.
  ``torch.bfloat16``) the forward pass and loss run under ``torch.autocast`` (mixed precision,
  float32 weights), on the device the model and inputs are on."""
  optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                              lr=learning_rate, momentum=momentum, weight_decay=weight_decay)

  def step(images, labels):
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(images.device.type, dtype=autocast_dtype,
                        enabled=autocast_dtype is not None):
      loss = soft_iou_loss(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()

  return step
