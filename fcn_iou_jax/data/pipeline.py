"""tf.data pipelines from raw examples to segmentation batches ``{image, label, mask}``.

* Binary (one category): ``label`` is 1 where the pixel is the category and 0 for every
  other class. Multi-class (``category_id=None``): ``label`` is the class id. ``mask`` is 0
  on void pixels (whose label is then 0) and on eval padding, 1 elsewhere.
* Training (the paper's recipe): resize to a fixed size (image bilinear, label and mask
  nearest), random horizontal flip applied identically to all three, the backbone's input
  normalisation, and, in binary mode, at least one image containing the category in every
  minibatch. Optionally (not in the paper) a random crop after the resize, for short CPU runs
  that keep thin objects at their full-resolution width: the positive image's crop is placed
  around a pixel of the category so the rule still holds (multi-class crops are uniform, or
  centred on a pixel of a class drawn uniformly among the image's classes). Also optional
  and not in the paper: a random rescale before the crop and a random colour jitter.
* Evaluation: original resolution, padded to a static shape with ``mask = 0`` on padding.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from fcn_iou_jax.errors import UserError

CAFFE_BGR_MEAN = (104.00698793, 116.66876762, 122.67891434)  # ImageNet mean, Caffe AlexNet
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)


def normalize_image(image, backbone: str, input_mean=None):
  """uint8 RGB ``[..., 3]`` -> the float32 input the backbone was trained on.

  ``caffe``: BGR order, 0-255 scale, minus ``input_mean`` (BGR; ``None``: Caffe's ImageNet
  mean, or the mean that came with the weights). ``torchvision``: RGB in [0, 1], minus
  mean, over std. Zero then means "the mean colour", which is also what the network's own
  zero padding means.
  """
  image = tf.cast(image, tf.float32)
  if backbone == "caffe":
    mean = CAFFE_BGR_MEAN if input_mean is None else input_mean
    # tf.reverse: half the time of the strided slice image[..., ::-1], the same values.
    return tf.reverse(image, axis=[-1]) - tf.constant(mean, tf.float32)
  return (image / 255.0 - tf.constant(TORCHVISION_MEAN)) / tf.constant(TORCHVISION_STD)


def binarize(example, *, category_id: int | None, void: int):
  """Raw example -> ``{image uint8 [H,W,3], label uint8 [H,W], mask uint8 [H,W]}``.

  ``category_id=None`` keeps every class id (void set to 0 under ``mask = 0``): the
  multi-class labels used to pre-train a shared backbone.
  """
  classes = example["label"][..., 0]
  mask = tf.cast(classes != void, tf.uint8)
  if category_id is None:
    return {"image": example["image"], "label": classes * mask, "mask": mask}
  label = tf.cast(classes == category_id, tf.uint8) * mask
  return {"image": example["image"], "label": label, "mask": mask}


def resize(example, size):
  """Image bilinear, label and mask nearest neighbour, to ``size = (height, width)``. An
  example of that size already is passed through: what both resizes would give it."""

  def resized():
    image = tf.image.resize(example["image"], size, method="bilinear")
    image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    nearest = lambda x: tf.image.resize(x[..., None], size, method="nearest")[..., 0]
    return {"image": image, "label": nearest(example["label"]), "mask": nearest(example["mask"])}

  unchanged = tf.reduce_all(tf.shape(example["label"]) == tf.cast(size, tf.int32))
  result = tf.cond(unchanged, lambda: dict(example), resized)
  if tf.is_tensor(size):
    return result
  return {key: tf.ensure_shape(value, [*size, *value.shape[2:]]) for key, value in result.items()}


def random_flip(example, seed):
  """Left-right flip of image, label and mask together, with probability 1/2."""
  flip = tf.random.stateless_uniform((), seed=seed) < 0.5
  return {key: tf.cond(flip, lambda v=value: tf.reverse(v, axis=[1]), lambda v=value: v)
          for key, value in example.items()}


def _anchor_pixels(example, anchor: str, seed):
  """``[N, 2]`` pixels one of which the crop window must hold: the category's (``positive``),
  or those of one class drawn uniformly among the classes of the image (``class``)."""
  valid = example["mask"] > 0
  if anchor == "positive":
    return tf.cast(tf.where((example["label"] > 0) & valid), tf.int32)
  classes = tf.unique(tf.boolean_mask(example["label"], valid)).y
  index = tf.random.stateless_uniform((), seed, 0, tf.maximum(tf.size(classes), 1), tf.int32)
  chosen = tf.cond(tf.size(classes) > 0, lambda: valid & (example["label"] == classes[index]),
                   lambda: tf.ones_like(valid))  # an all-void image: any pixel
  return tf.cast(tf.where(chosen), tf.int32)


def random_crop(example, size, seed, *, anchor: str | None):
  """Crops image, label and mask to ``size = (height, width)`` at one random offset.

  ``anchor`` (``positive`` or ``class``, :func:`_anchor_pixels`): the offset is drawn among
  those whose window holds one randomly chosen anchor pixel (uniform over such pixels, then
  over such offsets), so a positive image stays positive; ``None``: uniform over all offsets.
  """
  crop = tf.constant(size, tf.int32)
  shape = tf.shape(example["label"])
  pixel_seed, offset_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  low, high = tf.zeros([2], tf.int32), shape - crop
  if anchor is not None:
    pixels = _anchor_pixels(example, anchor, tf.random.experimental.stateless_fold_in(seed, 1))
    index = tf.random.stateless_uniform((), pixel_seed, 0, tf.shape(pixels)[0], tf.int32)
    centre = pixels[index]
    low, high = tf.maximum(low, centre - crop + 1), tf.minimum(high, centre)
  draw = tf.random.stateless_uniform([2], offset_seed, 0, 2**30, tf.int32)
  top, left = tf.unstack(draw % (high - low + 1) + low)

  def window(value):
    cropped = value[top:top + size[0], left:left + size[1]]
    return tf.ensure_shape(cropped, [*size, *value.shape[2:]])

  return {key: window(value) for key, value in example.items()}


def random_scale(example, jitter: float, seed, *, min_size, keep_positive: bool):
  """Resizes image, label and mask by one factor drawn log-uniformly from
  ``[1 / (1 + jitter), 1 + jitter]``, never below ``min_size`` (the crop that follows).

  ``keep_positive``: if the rescaled label lost every pixel of the category (a thin object
  shrunk away by the nearest-neighbour resize), the example is returned unscaled.
  """
  log_range = tf.math.log(1.0 + jitter)
  factor = tf.exp(tf.random.stateless_uniform((), seed, -log_range, log_range))
  shape = tf.cast(tf.shape(example["label"]), tf.float32)
  size = tf.maximum(tf.cast(tf.round(shape * factor), tf.int32), tf.constant(min_size, tf.int32))
  scaled = resize(example, size)
  if not keep_positive:
    return scaled
  return tf.cond(_has_category(scaled), lambda: scaled, lambda: example)


def random_colour(image, strength: float, seed):
  """Random brightness (shift up to ``strength`` of the full range), contrast and saturation
  (factors in ``[1 - strength, 1 + strength]``) of a uint8 RGB image, in that order."""
  brightness_seed, contrast_seed, saturation_seed = tf.unstack(
      tf.random.experimental.stateless_split(seed, 3))
  image = tf.image.convert_image_dtype(image, tf.float32)
  image = tf.image.stateless_random_brightness(image, strength, brightness_seed)
  image = tf.image.stateless_random_contrast(image, 1 - strength, 1 + strength, contrast_seed)
  image = tf.image.stateless_random_saturation(image, 1 - strength, 1 + strength,
                                               saturation_seed)
  return tf.image.convert_image_dtype(tf.clip_by_value(image, 0.0, 1.0), tf.uint8,
                                      saturate=True)


def _has_category(example):
  return tf.reduce_any((example["label"] > 0) & (example["mask"] > 0))


def _augmented_stream(examples, *, seed: int, stream: int, backbone: str, input_mean=None,
                      crop_size=None, positives: bool = False, scale_jitter: float = 0.0,
                      colour_jitter: float = 0.0, skip: int = 0, crop_anchor: str | None = None):
  """Shuffled, repeated, (rescaled, cropped,) flipped, (colour-jittered) and normalised
  examples; deterministic in ``seed``. The first ``skip`` are passed over before any
  augmentation (each example's augmentation depends on its place in the stream only)."""

  def augment(index, example):
    example_seed = tf.stack([tf.cast(seed, tf.int64), stream * 2**40 + index])
    fold_in = lambda salt: tf.random.experimental.stateless_fold_in(example_seed, salt)
    if scale_jitter:
      example = random_scale(example, scale_jitter, fold_in(1), min_size=crop_size,
                             keep_positive=positives)
    if crop_size is not None:
      crop_seed = tf.random.experimental.stateless_split(example_seed, 1)[0]
      example = random_crop(example, crop_size, crop_seed,
                            anchor="positive" if positives else crop_anchor)
    example = random_flip(example, example_seed)
    if colour_jitter:
      example = dict(example, image=random_colour(example["image"], colour_jitter, fold_in(2)))
    return dict(example, image=normalize_image(example["image"], backbone, input_mean))

  return (examples.shuffle(512, seed=seed + stream, reshuffle_each_iteration=True).repeat()
          .enumerate().skip(skip).map(augment, num_parallel_calls=tf.data.AUTOTUNE))


def make_train_dataset(examples, *, category_id: int | None, void: int, image_size,
                       batch_size: int, backbone: str, seed: int,
                       category_name: str = "the category", crop_size=None,
                       scale_jitter: float = 0.0, colour_jitter: float = 0.0, input_mean=None,
                       skip_batches: int = 0, class_aware_crops: bool = False):
  """Infinite training batches; in binary mode with at least one positive image each.

  Binary mode, how: two streams over the same cached, resized examples. Each batch takes one
  image from a shuffled stream of the images that contain the category and
  ``batch_size - 1`` from a shuffled stream of all images, so negatives keep their natural
  share in the rest of the batch (with ``batch_size == 1`` every batch is a positive image).
  Multi-class mode (``category_id=None``): one shuffled stream of all images, class ids kept.

  With ``crop_size`` every image is then cropped at random to that size, the positive one
  around a pixel of the category (multi-class, ``class_aware_crops``: every image around a
  pixel of a class drawn uniformly among its classes). ``scale_jitter`` (needs
  ``crop_size``) and ``colour_jitter`` add the augmentations of :func:`random_scale` and
  :func:`random_colour` (not in the paper; 0 turns them off).

  ``skip_batches`` starts the same sequence of batches that many batches in, so that a
  resumed run sees exactly the batches the uninterrupted run would have seen. Skipped
  examples are taken from the cached, shuffled stream but not augmented.

  Returns:
    ``(dataset, positive_count, example_count)``, ``positive_count`` the images that hold
    the category (multi-class: every image); batch leaves are ``[B, ...]``.
  """
  check_augmentation(crop_size, image_size, scale_jitter)
  augmentation = {"crop_size": crop_size, "scale_jitter": scale_jitter,
                  "colour_jitter": colour_jitter, "backbone": backbone, "input_mean": input_mean}
  prepared = examples.map(lambda e: resize(binarize(e, category_id=category_id, void=void),
                                           image_size),
                          num_parallel_calls=tf.data.AUTOTUNE).cache()
  if category_id is None:
    example_count = int(prepared.reduce(0, lambda count, _: count + 1))  # also fills the cache
    batches = _augmented_stream(prepared, seed=seed, stream=2, skip=skip_batches * batch_size,
                                crop_anchor="class" if class_aware_crops else None,
                                **augmentation).batch(batch_size)
    return _prefetched(batches), example_count, example_count
  counts = prepared.reduce((0, 0), lambda c, e: (c[0] + 1, c[1] + tf.cast(_has_category(e),
                                                                          tf.int32)))
  example_count, positive_count = (int(c) for c in counts)  # also fills the cache
  if positive_count == 0:
    raise UserError(f"no training image contains {category_name}: the IoU loss has no "
                    "gradient without positives")
  positives = _augmented_stream(prepared.filter(_has_category), seed=seed, stream=0,
                                positives=True, skip=skip_batches, **augmentation).batch(1)
  batches = positives
  if batch_size > 1:
    everything = _augmented_stream(prepared, seed=seed, stream=1,
                                   skip=skip_batches * (batch_size - 1), **augmentation)
    batches = tf.data.Dataset.zip(positives, everything.batch(batch_size - 1)).map(
        lambda a, b: {k: tf.concat([a[k], b[k]], 0) for k in a})
  return _prefetched(batches), positive_count, example_count


def _prefetched(batches):
  """``batches`` prefetched, without tf.data's autotuning model. Its thread re-optimises at
  intervals that grow to a minute, and deleting an iterator waits for its next wake-up: in
  a CPU-protocol grid 12 of 30 runs ended 15-56 s late deleting their training iterator
  (measured alone: 18-19 s against 0.02 s without it). ``AUTOTUNE`` parallelism then stays
  at tf.data's default, the number of cores (at most 16), which is ample for these light
  maps."""
  options = tf.data.Options()
  options.autotune.enabled = False
  return batches.prefetch(tf.data.AUTOTUNE).with_options(options)


def check_augmentation(crop_size, image_size, scale_jitter):
  """Refuses, with a :class:`UserError`, a crop larger than the training size or a scale
  jitter without a crop."""
  if crop_size is not None and any(c > s for c, s in zip(crop_size, image_size)):
    raise UserError(f"`crop_size`={crop_size[0]}x{crop_size[1]} is larger than the training "
                    f"size {image_size[0]}x{image_size[1]}")
  if scale_jitter and crop_size is None:
    raise UserError(f"`scale_jitter`={scale_jitter} needs `crop_size` (the crop gives every "
                    "rescaled image the same size)")


def scaled_size(size, scale: float):
  """``(round(h * scale), round(w * scale))``."""
  return tuple(int(round(n * scale)) for n in size)


def make_eval_dataset(examples, *, category_id: int, void: int, pad_to, batch_size: int,
                      backbone: str, input_scale: float = 1.0, input_mean=None):
  """Original-resolution labels padded to ``pad_to`` with ``mask = 0`` on padding.

  The image is the original one, or, with ``input_scale != 1`` (a model trained on images
  resized by that factor), that image resized by ``input_scale`` so the network sees objects
  at the scale it learned; the eval step brings its scores back to the label's resolution, so
  the metric is always counted on original pixels.

  Batch leaves: ``image [B, H', W', 3]`` float32 (``H' = H * input_scale``),
  ``label``/``mask [B, H, W]`` uint8, ``height``/``width [B]`` (the original size). The last
  batch may be short: see :func:`pad_batch`.
  """
  height, width = pad_to
  image_pad = scaled_size(pad_to, input_scale)

  def prepare(example):
    example = binarize(example, category_id=category_id, void=void)
    size = tf.shape(example["label"])
    tf.debugging.assert_less_equal(size, tf.constant([height, width]),
                                   message=f"image larger than the eval size {pad_to}")
    image = normalize_image(example["image"], backbone, input_mean)
    if input_scale != 1.0:
      scaled = tf.cast(tf.round(tf.cast(size, tf.float32) * input_scale), tf.int32)
      image = tf.image.resize(image, scaled, method="bilinear")
    return {"image": image, "label": example["label"], "mask": example["mask"],
            "height": size[0], "width": size[1]}

  return _prefetched(examples.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
                     .padded_batch(batch_size, padded_shapes={
                         "image": [*image_pad, 3], "label": [height, width],
                         "mask": [height, width], "height": [], "width": []}))


def pad_batch(batch: dict[str, np.ndarray], batch_size: int):
  """Pads a short final batch with empty images; returns ``(batch, valid [batch_size])``."""
  present = len(next(iter(batch.values())))
  valid = np.arange(batch_size) < present
  if present == batch_size:
    return batch, valid
  padded = {k: np.concatenate([v, np.zeros((batch_size - present, *v.shape[1:]), v.dtype)])
            for k, v in batch.items()}
  return padded, valid
