"""Multi-class runs (--category=all) through the one training loop, evaluation and predict."""


import jax
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from fcn_iou_jax import build, inference, losses, pretrained, train
from fcn_iou_jax.config import Config
from fcn_iou_jax.data import categories, pipeline, sources, synthetic
from fcn_iou_jax.errors import UserError

import predict

EVERY_CLASS = dict(dataset="synthetic", category="all", width_mult=0.0625, optimizer="adam",
                   learning_rate=3e-4, batch_size=4, eval_batch_size=4, log_every=1,
                   eval_every=2)
RESULT_KEYS = {"dataset", "category", "loss", "seed", "best_step", "steps",
               "train_images_per_sec", "selection", "val", "test", "config"}
SPLIT_KEYS = {"miou", "per_class_iou", "pixel_accuracy", "mean_class_accuracy",
              "frequency_weighted_iou", "confusion"}


@pytest.mark.parametrize("dataset, classes", [
    ("voc2010", 21), ("voc2011", 21), ("voc2012", 21), ("camvid", 11), ("synthetic", 3)])
def test_all_means_every_class_of_the_dataset(dataset, classes):
  labels = sources.get_spec(dataset).labels
  for spelling in ("all", "ALL", "All"):
    task = build.build_task(Config(dataset=dataset, category=spelling))
    assert task.multiclass and task.num_outputs == classes == len(labels.colours)
    assert task.class_names == labels.names
  binary = build.build_task(Config(dataset=dataset, category=labels.names[1]))
  assert not binary.multiclass and binary.num_outputs == 1 and binary.category_id == 1
  with pytest.raises(UserError, match="or all \\(every class\\)"):
    build.build_task(Config(dataset=dataset, category="unicorn"))


def test_voc_colours_are_the_voc_colour_map():
  # The published VOC colours of a few classes: background, aeroplane, person, tvmonitor.
  voc = categories.VOC.colours
  assert voc[0] == (0, 0, 0) and voc[1] == (128, 0, 0) and voc[15] == (192, 128, 128)
  assert voc[20] == (0, 64, 128) and len(set(voc)) == 21
  assert categories.CAMVID.colours[3] == (128, 64, 128)  # road, SegNet's colour


def test_a_sum_of_losses_is_the_sum_and_weights_go_where_they_fit():
  rng = np.random.default_rng(0)
  logits = jnp_array(rng.normal(size=(2, 6, 5, 4)))
  labels = jnp_array(rng.integers(0, 4, size=(2, 6, 5)))
  mask = jnp_array(rng.uniform(size=(2, 6, 5)) > 0.2)
  total = losses.get_loss("softmax+iou", multiclass=True)(logits, labels, mask)
  parts = [losses.get_loss(name, multiclass=True)(logits, labels, mask)
           for name in ("softmax", "iou")]
  np.testing.assert_allclose(total, sum(parts), rtol=1e-6)
  weights = np.array([0.5, 1.0, 2.0, 0.0], np.float32)
  weighted = losses.get_loss("softmax", multiclass=True, class_weights=weights)
  assert not np.isclose(weighted(logits, labels, mask), parts[0])
  for name, multiclass in (("lovasz", True), ("iou", False)):
    with pytest.raises(ValueError, match="takes no class weights"):
      losses.get_loss(name, multiclass=multiclass, class_weights=weights)


def jnp_array(value):
  return jax.numpy.asarray(np.asarray(value, np.float32 if value.dtype.kind == "f" else np.int32))


@pytest.mark.parametrize("settings, message", [
    (dict(category="disk", class_weighting="median_frequency"), "needs `category`=all"),
    (dict(category="all", loss="lovasz", class_weighting="median_frequency"), "not `loss`=lovasz"),
    (dict(category="all", class_aware_crops=True), "needs `category`=all and `crop_size`"),
    (dict(category="disk", class_aware_crops=True, crop_size=(32, 32)), "`class_aware_crops`"),
])
def test_settings_that_need_a_multiclass_run_are_refused_first(tmp_path, settings, message):
  config = Config(**dict(EVERY_CLASS, **settings))
  with pytest.raises(UserError, match=message):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


def test_class_aware_crops_centre_on_a_class_drawn_among_the_image_s_classes():
  """One 4x4 patch of class 2 in a corner of a 64x64 image of class 1: a class-aware crop
  holds it whenever class 2 is drawn (half the time), a uniform 16x16 crop seldom does."""
  label = np.ones((64, 64), np.uint8)
  label[:4, :4] = 2
  example = {"image": tf.zeros((64, 64, 3), tf.uint8), "label": tf.constant(label),
             "mask": tf.ones((64, 64), tf.uint8)}
  holds = {}
  for anchor in ("class", None):
    crops = [pipeline.random_crop(example, (16, 16), tf.constant([7, i], tf.int64),
                                  anchor=anchor)["label"].numpy() for i in range(200)]
    holds[anchor] = np.mean([(crop == 2).any() for crop in crops])
  assert 0.4 < holds["class"] < 0.7  # 1/2, plus class-1 anchors near the corner
  assert holds[None] < 0.05  # (1/49 of offsets place the window on the patch)


@pytest.mark.slow
def test_a_multiclass_run_trains_scores_predicts_and_seeds_a_binary_run(tmp_path, capsys):
  """(Its resume: test_train's SIGTERM test runs a multi-class config.)"""
  # float32: the brute force below runs the model image by image; with bfloat16 operands
  # (--dtype=auto on a CPU with AMX) a batch's other float32 summation order can round an
  # activation the other way and flip a near-tied argmax (2 of 460k pixels seen).
  config = Config(**EVERY_CLASS, train_steps=2, loss="lovasz", dtype="float32")
  whole = train.train_and_evaluate(config, str(tmp_path / "whole"))
  assert set(whole) == RESULT_KEYS and whole["category"] == "all"
  names = sources.get_spec("synthetic").labels.names
  assert set(whole["selection"]) == {"miou", "per_class_iou"}
  for split in ("val", "test"):
    assert set(whole[split]) == SPLIT_KEYS and list(whole[split]["per_class_iou"]) == list(names)
    confusion = np.array(whole[split]["confusion"])
    assert confusion.sum() == synthetic.SPLIT_SIZES[split] * 96 * 128  # no void in synthetic
    defined = [v for v in whole[split]["per_class_iou"].values() if v is not None]
    assert whole[split]["miou"] == pytest.approx(np.mean(defined))

  # The val confusion matrix, brute force: the argmax of each image's prediction.
  model, params = build.load_best_params(str(tmp_path / "whole"), config)
  expected = np.zeros((3, 3), np.int64)
  for example in sources.Source("synthetic").examples("val").as_numpy_iterator():
    predicted = inference.predict_probabilities(model, params, example["image"], "caffe")
    np.add.at(expected, (example["label"][..., 0], predicted.argmax(-1)), 1)
  np.testing.assert_array_equal(np.array(whole["val"]["confusion"]), expected)

  # A binary run starts from the multi-class run's conv1-fc7 (--init=<its folder>).
  _, state = build.read_init_weights(Config(**dict(EVERY_CLASS, category="disk",
                                                   init=str(tmp_path / "whole"))))
  np.testing.assert_array_equal(state["features.0.weight"],
                                pretrained.export_alexnet_state(params)["features.0.weight"])

  # predict.py: palette PNGs in the dataset's colours, an overlay and a legend.
  image = tmp_path / "photo.png"
  Image.fromarray(synthetic.generate(synthetic.SyntheticSpec(), "val")[0]["image"]).save(image)
  predict.main([f"--workdir={tmp_path / 'whole'}", f"--out={tmp_path / 'masks'}", str(image)])
  with Image.open(tmp_path / "masks" / "photo_mask.png") as mask:
    assert mask.mode == "P"
    palette = np.array(mask.getpalette()[:9]).reshape(3, 3)
    np.testing.assert_array_equal(palette, np.array(categories.SYNTHETIC.colours))
    assert int(np.array(mask).max()) < 3
  assert (tmp_path / "masks" / "photo_overlay.png").exists()
  assert (tmp_path / "masks" / "legend.png").exists()
  assert "photo.png: " in capsys.readouterr().out
  # A large image is segmented at --max_side; its mask keeps the image's own size.
  predict.main([f"--workdir={tmp_path / 'whole'}", f"--out={tmp_path / 'small'}",
                "--max_side=64", str(image)])
  with Image.open(tmp_path / "small" / "photo_mask.png") as mask, \
       Image.open(tmp_path / "small" / "photo_overlay.png") as overlay:
    assert mask.size == (128, 96) and overlay.size == (64, 48)


def test_predict_names_an_image_too_large_to_read(tmp_path, monkeypatch):
  Image.fromarray(np.zeros((96, 128, 3), np.uint8)).save(tmp_path / "huge.png")
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 96x128 is then a decompression bomb
  with pytest.raises(UserError, match=r"huge.png: more than 250 megapixels; downscale it"):
    predict.main(["--workdir=w", f"--out={tmp_path / 'out'}", str(tmp_path / "huge.png")])
  assert not (tmp_path / "out").exists()
