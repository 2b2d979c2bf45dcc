"""MatConvNet "simplenn" AlexNet models (``imagenet-caffe-alex.mat``): their layers' weights
and input mean, for the caffe layout.

A simplenn file holds ``layers``, a cell array of structs with ``name``, ``type`` and
``weights = {filters, biases}`` (older files: ``filters`` and ``biases`` fields). Filters are
``[h, w, in / groups, out]`` (HWIO, cross-correlation as in Caffe), and fc6 is already a 6x6
convolution over pool5. MatConvNet models take RGB input in 0-255 minus
``meta.normalization.averageImage`` (older files: ``normalization.averageImage``), so conv1's
input channels are reversed here for the caffe layout's BGR input, and the image's mean
colour is kept, in BGR order, as the input mean.
"""

from __future__ import annotations

import numpy as np

from fcn_iou_jax.errors import UserError

HDF5_HEADER = b"MATLAB 7.3 MAT-file"


def _field(struct, name):
  return getattr(struct, name, None)


def _layer_weights(layer):
  """``(filters [h, w, in, out], biases [out])`` of one simplenn layer struct."""
  weights = _field(layer, "weights")
  if weights is not None and len(weights) == 2:
    filters, biases = weights
  else:
    filters, biases = _field(layer, "filters"), _field(layer, "biases")
  if filters is None or biases is None:
    raise ValueError(f"layer {_field(layer, 'name')} has no weights")
  filters = np.asarray(filters, np.float32)
  if filters.ndim == 2:  # a 1x1 kernel (fc7) whose leading singletons the reader squeezed
    filters = filters[None, None]
  return filters, np.asarray(biases, np.float32).reshape(-1)


def _average_image(net: dict):
  meta = net.get("meta")
  normalization = _field(meta, "normalization") if meta is not None else net.get(
      "normalization")
  average = _field(normalization, "averageImage") if normalization is not None else None
  if average is None or np.size(average) == 0:
    return None
  average = np.asarray(average, np.float64)
  return average.reshape(-1, 3).mean(axis=0) if average.size % 3 == 0 else None


def read_matconvnet(path: str, layer_names) -> tuple[dict, tuple | None]:
  """``({name: {kernel [h, w, in, out] for BGR input, bias}}, BGR mean or None)``."""
  import scipy.io
  with open(path, "rb") as handle:
    if handle.read(len(HDF5_HEADER)) == HDF5_HEADER:
      raise UserError(f"{path}: a MATLAB v7.3 (HDF5) file, which scipy cannot read; re-save it "
                      "in MATLAB with save(file, '-struct', 'net', '-v7')")
  try:
    net = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
  except (ValueError, OSError, TypeError, NotImplementedError, EOFError) as error:
    raise UserError(f"{path}: not a readable MATLAB file ({error})") from error
  layers = np.atleast_1d(net.get("layers", []))
  by_name = {str(_field(layer, "name")): layer for layer in layers
             if _field(layer, "name") is not None}
  missing = [name for name in layer_names if name not in by_name]
  if missing:
    raise UserError(f"{path}: not a MatConvNet AlexNet (no layer {', '.join(missing)})")
  hwio = {}
  for name in layer_names:
    try:
      kernel, bias = _layer_weights(by_name[name])
    except ValueError as error:
      raise UserError(f"{path}: {error}") from error
    hwio[name] = {"kernel": kernel, "bias": bias}
  hwio["conv1"]["kernel"] = hwio["conv1"]["kernel"][:, :, ::-1, :]  # RGB -> BGR input
  mean_rgb = _average_image(net)
  return hwio, None if mean_rgb is None else tuple(float(v) for v in mean_rgb[::-1])
