"""BVLC Caffe AlexNet/CaffeNet weights (``bvlc_alexnet.caffemodel``), read from the protobuf
wire format directly (no Caffe, no generated classes).

Fields of ``caffe.proto`` used: ``NetParameter.layer`` (100) and the legacy ``layers`` (2);
``LayerParameter.name`` (1) and ``blobs`` (7), legacy ``V1LayerParameter.name`` (4) and
``blobs`` (6); ``BlobProto.data`` (5, float32), ``shape`` (7: ``BlobShape.dim``, 1) and the
legacy ``num/channels/height/width`` (1-4). Caffe stores convolution weights
``[out, in / groups, kh, kw]`` and fc6 as ``[4096, 9216]`` over pool5 flattened in C, H, W
order: the torchvision layout already. Caffe models take BGR 0-255 input; a caffemodel
carries no mean (Caffe keeps it in a separate file), so the Caffe ImageNet mean applies.
"""

from __future__ import annotations

import numpy as np

from fcn_iou_jax.errors import UserError

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
NET_LAYER, NET_LEGACY_LAYERS = 100, 2
LAYER_NAME, LAYER_BLOBS = 1, 7
LEGACY_LAYER_NAME, LEGACY_LAYER_BLOBS = 4, 6
BLOB_DATA, BLOB_SHAPE, SHAPE_DIM = 5, 7, 1
BLOB_LEGACY_DIMS = (1, 2, 3, 4)  # num, channels, height, width


def _varint(data: bytes, position: int) -> tuple[int, int]:
  value, shift = 0, 0
  while True:
    if position >= len(data):
      raise ValueError("truncated varint")
    byte = data[position]
    position += 1
    value |= (byte & 0x7F) << shift
    if not byte & 0x80:
      return value, position
    shift += 7


def fields(data: bytes):
  """Yields ``(field number, wire type, value)`` of one message: ints for varints, ``bytes``
  for the other wire types."""
  position = 0
  while position < len(data):
    key, position = _varint(data, position)
    number, wire_type = key >> 3, key & 7
    if wire_type == VARINT:
      value, position = _varint(data, position)
    elif wire_type in (FIXED64, FIXED32, LENGTH):
      if wire_type == LENGTH:
        size, position = _varint(data, position)
      else:
        size = 8 if wire_type == FIXED64 else 4
      if position + size > len(data):
        raise ValueError("truncated field")
      value, position = data[position:position + size], position + size
    else:
      raise ValueError(f"unknown wire type {wire_type}")
    yield number, wire_type, value


def _packed_varints(payload: bytes) -> list[int]:
  values, position = [], 0
  while position < len(payload):
    value, position = _varint(payload, position)
    values.append(value)
  return values


def _blob(data: bytes) -> np.ndarray:
  chunks, shape, legacy = [], [], {}
  for number, wire_type, value in fields(data):
    if number == BLOB_DATA:
      chunks.append(np.frombuffer(value, "<f4"))  # packed, or one float (FIXED32)
    elif number == BLOB_SHAPE and wire_type == LENGTH:
      for dim_number, dim_type, dim in fields(value):
        if dim_number == SHAPE_DIM:
          shape += _packed_varints(dim) if dim_type == LENGTH else [dim]
    elif number in BLOB_LEGACY_DIMS and wire_type == VARINT:
      legacy[number] = value
  values = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
  if not shape:
    shape = [legacy.get(number, 1) for number in BLOB_LEGACY_DIMS]
  if int(np.prod(shape)) != values.size:
    raise ValueError(f"a blob of shape {shape} holds {values.size} values")
  return values.reshape(shape)


def _layers(data: bytes) -> dict[str, list[np.ndarray]]:
  """Blobs of every layer, by name (``layer`` and legacy ``layers`` alike)."""
  layers = {}
  for number, wire_type, value in fields(data):
    if wire_type != LENGTH or number not in (NET_LAYER, NET_LEGACY_LAYERS):
      continue
    name_field, blobs_field = ((LAYER_NAME, LAYER_BLOBS) if number == NET_LAYER
                               else (LEGACY_LAYER_NAME, LEGACY_LAYER_BLOBS))
    name, blobs = None, []
    for field_number, field_type, field_value in fields(value):
      if field_number == name_field and field_type == LENGTH:
        name = field_value.decode("utf-8", "replace")
      elif field_number == blobs_field and field_type == LENGTH:
        blobs.append(_blob(field_value))
    if name is not None:
      layers[name] = blobs
  return layers


def read_caffemodel(path: str, layer_names) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """``{name: (weight, bias)}`` of the named layers: convolutions ``[out, in / groups, kh,
  kw]``, fully connected layers ``[out, in]`` (other layers, such as fc8, are not kept)."""
  with open(path, "rb") as handle:
    data = handle.read()
  try:
    layers = _layers(data)
  except (ValueError, UnicodeDecodeError) as error:
    raise UserError(f"{path}: not a readable caffemodel ({error})") from error
  missing = [name for name in layer_names if len(layers.get(name, [])) != 2]
  if missing:
    raise UserError(f"{path}: not a Caffe AlexNet (no weights and bias for "
                    f"{', '.join(missing)})")
  weights = {}
  for name in layer_names:
    weight, bias = layers[name]
    bias = bias.reshape(-1)
    # Legacy blobs are 4-D (fc weights [1, 1, out, in]); fc layers are matrices.
    weights[name] = ((weight.reshape(bias.size, -1) if name.startswith("fc")
                      else weight.reshape(bias.size, *weight.shape[-3:])), bias)
  return weights
