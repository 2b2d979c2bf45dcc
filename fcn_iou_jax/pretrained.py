"""ImageNet AlexNet weights into FCN-32s parameters, with FCN's fc-to-conv "surgery".

Weights come as a torchvision-style state dict: a ``.pth`` file (needs torch, only for this
format) or an ``.npz`` with the same keys; MatConvNet ``.mat`` and Caffe ``.caffemodel``
files are read into the same keys (``matconvnet.py``, ``caffemodel.py``). Keys name the
layers by their index in torchvision's ``AlexNet`` (``features.0`` conv1, ``features.3``
conv2, ``features.6`` conv3, ``features.8`` conv4, ``features.10`` conv5, ``classifier.1``
fc6, ``classifier.4`` fc7; ``classifier.6``, the 1000-way ImageNet classifier, is not
used). The same keys serve the ``caffe`` layout, whose grouped convolutions store
``[O, I / groups, kh, kw]`` kernels.
Every name and shape is checked; any mismatch is an error naming the key.
"""

from __future__ import annotations

import os
import pickle
import zipfile

import numpy as np

from fcn_iou_jax import caffemodel, matconvnet
from fcn_iou_jax.errors import UserError

LAYER_KEYS = {
    "conv1": "features.0", "conv2": "features.3", "conv3": "features.6",
    "conv4": "features.8", "conv5": "features.10", "fc6": "classifier.1", "fc7": "classifier.4",
}
UNUSED_PREFIXES = ("classifier.6.",)
# The BGR mean the caffe layout's input must have subtracted, where the weights carry one.
INPUT_MEAN_KEY = "input_mean_bgr"


def read_state_dict(path: str) -> dict[str, np.ndarray]:
  """Arrays of an ``.npz``, ``.pth``, MatConvNet ``.mat`` or ``.caffemodel`` AlexNet."""
  if not os.path.isfile(path):
    raise UserError(f"`init`: weights file {path} does not exist")
  if path.endswith(".mat"):
    layers, mean = matconvnet.read_matconvnet(path, LAYER_KEYS)
    state = export_alexnet_state(layers)
    if mean is not None:
      state[INPUT_MEAN_KEY] = np.asarray(mean, np.float32)
    return state
  if path.endswith(".caffemodel"):
    layers = caffemodel.read_caffemodel(path, LAYER_KEYS)
    return {f"{LAYER_KEYS[name]}.{kind}": value for name, (weight, bias) in layers.items()
            for kind, value in (("weight", weight), ("bias", bias))}
  if path.endswith(".npz"):
    try:
      with np.load(path) as archive:
        return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
      raise UserError(f"`init`: {path} is not an .npz of arrays ({type(error).__name__})") \
          from error
  if path.endswith((".pth", ".pt")):
    try:
      import torch
    except ImportError as error:
      raise UserError(f"`init`: reading {path} needs torch (pip install torch), or convert it "
                      "to .npz with experiments/convert_weights.py") from error
    try:
      state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, IndexError, pickle.UnpicklingError) as error:
      raise UserError(f"`init`: {path} is not a torch state dict ({type(error).__name__})") \
          from error
    return {key: value.numpy() for key, value in state.items()}
  raise UserError(f"`init`: {path} is none of .npz, .pth, .mat, .caffemodel")


def input_mean(state: dict[str, np.ndarray]) -> tuple[float, float, float] | None:
  """The BGR input mean that came with the weights, or ``None``."""
  if INPUT_MEAN_KEY not in state:
    return None
  return tuple(float(v) for v in np.asarray(state[INPUT_MEAN_KEY]).reshape(3))


def _torch_conv_to_hwio(weight):
  return np.transpose(weight, (2, 3, 1, 0))


def _convert_layer(name, weight, target_shape):
  """Torch layout -> Flax HWIO, reshaping fc6/fc7 matrices into convolution kernels."""
  if name.startswith("conv"):
    return _torch_conv_to_hwio(weight)
  kh, kw, in_channels, out_channels = target_shape
  if weight.ndim != 2 or weight.shape[0] != out_channels:
    return weight  # wrong shape: let the caller's check report it
  if weight.shape[1] != kh * kw * in_channels:
    return weight
  # torch flattens pool5 as [C, H, W]: unflatten in that order, then to HWIO.
  return _torch_conv_to_hwio(weight.reshape(out_channels, in_channels, kh, kw))


def load_alexnet_into(params, state: dict[str, np.ndarray], *, source: str = "weights"):
  """Returns ``params`` with conv1-5, fc6 and fc7 replaced by ``state``'s weights.

  The scoring layer (and the upsampling, if learned) keep their initial values.
  Raises :class:`UserError` naming the key on any missing, unexpected or misshapen entry.
  """
  expected = {f"{key}.{kind}" for key in LAYER_KEYS.values() for kind in ("weight", "bias")}
  unexpected = sorted(k for k in state if k not in expected and k != INPUT_MEAN_KEY
                      and not k.startswith(UNUSED_PREFIXES))
  missing = sorted(expected - set(state))
  if missing or unexpected:
    raise UserError(f"{source}: not an AlexNet state dict (missing {missing or 'none'}, "
                    f"unexpected {unexpected or 'none'})")
  new_params = dict(params)
  for name, key in LAYER_KEYS.items():
    layer = params[name]
    kernel = _convert_layer(name, np.asarray(state[f"{key}.weight"]), layer["kernel"].shape)
    bias = np.asarray(state[f"{key}.bias"])
    for what, value, target in ((f"{key}.weight", kernel, layer["kernel"]),
                                (f"{key}.bias", bias, layer["bias"])):
      if value.shape != target.shape:
        raise UserError(f"{source}: {what} has shape {state[what].shape}, which does not fit "
                        f"{name} {target.shape} of this model (`backbone`, `width_mult` and "
                        "`fc6_kernel` must match the weights'; ImageNet AlexNet: `width_mult`=1 "
                        "`fc6_kernel`=6)")
    new_params[name] = {"kernel": kernel.astype(np.float32), "bias": bias.astype(np.float32)}
  return new_params


def export_alexnet_state(params) -> dict[str, np.ndarray]:
  """The inverse of :func:`load_alexnet_into`: conv1-5, fc6, fc7 as a torchvision-style dict.

  Lets a backbone trained here (such as a multi-class run's best parameters) serve as ``--init``.
  """
  state = {}
  for name, key in LAYER_KEYS.items():
    kernel = np.asarray(params[name]["kernel"])
    weight = np.transpose(kernel, (3, 2, 0, 1))  # HWIO -> OIHW
    if name.startswith("fc"):
      weight = weight.reshape(weight.shape[0], -1)  # OIHW flattens as torch's [C, H, W]
    state[f"{key}.weight"] = weight
    state[f"{key}.bias"] = np.asarray(params[name]["bias"])
  return state
