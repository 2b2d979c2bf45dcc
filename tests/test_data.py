"""Dataset builders, pipelines and bad-input errors, on fake and on the real shared data."""

import logging
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import fake_data
from fcn_iou_jax import config, metrics
from fcn_iou_jax.data import categories, pipeline, sources, statistics, synthetic
from fcn_iou_jax.errors import UserError


@pytest.fixture(scope="module")
def prepared_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("prepared"))


def _labels(source, split):
  return [e["label"][..., 0] for e in source.examples(split).as_numpy_iterator()]


def test_fake_voc_palette_masks_decode_to_class_indices(tmp_path):
  fake_data.make_voc(tmp_path, splits=("train", "val"))
  source = sources.Source("voc2012", data_dir=str(tmp_path), prepared_dir=str(tmp_path / "p"))
  assert source.available_splits() == ["selection_train", "selection", "train", "val"]
  shapes = set()
  for example in source.examples("train").as_numpy_iterator():
    assert set(np.unique(example["label"])) == {0, 15, 255}  # not palette colours
    shapes.add(example["image"].shape[:2])
  assert shapes == {(40, 60), (60, 40), (33, 50)}


@pytest.mark.slow
def test_real_voc_masks_equal_pillow_palette_indices(voc_dir, prepared_dir):
  source = sources.Source("voc2012", data_dir=str(voc_dir), prepared_dir=prepared_dir)
  assert source.available_splits() == ["selection_train", "selection", "train"]
  segmentation = voc_dir / "VOCdevkit" / "VOC2012" / "SegmentationClass"
  count = 0
  for example in source.examples("train").as_numpy_iterator():
    image_id = example["image_id"].decode()
    expected = np.array(Image.open(segmentation / f"{image_id}.png"))
    np.testing.assert_array_equal(example["label"][..., 0], expected)
    count += 1
  assert count == 311
  assert source.num_examples("selection_train") + source.num_examples("selection") == 311


@pytest.mark.slow
def test_real_camvid_sizes_and_class_shares(camvid_dir, prepared_dir):
  source = sources.Source("camvid", data_dir=str(camvid_dir), prepared_dir=prepared_dir)
  assert source.num_examples("train") == 367 and source.num_examples("val") == 101
  assert "test" not in source.available_splits()
  for example in source.examples("val").take(3).as_numpy_iterator():
    assert example["image"].shape == (360, 480, 3) and example["label"].shape == (360, 480, 1)
  counts = statistics.class_pixel_counts(source.examples("train"), 11)
  shares = counts / counts.sum()
  assert shares[categories.CAMVID.category_id("pole", dataset="camvid")] == pytest.approx(
      0.01, abs=0.002)
  assert shares[categories.CAMVID.category_id("road", dataset="camvid")] == pytest.approx(
      0.32, abs=0.015)


def _image_ids(source, split):
  return [e["image_id"].decode() for e in source.examples(split).as_numpy_iterator()]


def test_selection_partition_is_fixed_and_covers_train_once(tmp_path):
  root = fake_data.make_camvid(tmp_path / "camvid", counts=(("train", 20),))
  ids = {}
  for prepared in ("p1", "p2"):  # prepared twice: the same partition
    source = sources.Source("camvid", data_dir=str(root), prepared_dir=str(tmp_path / prepared))
    ids[prepared] = {split: _image_ids(source, split)
                     for split in ("selection_train", "selection", "train")}
  first = ids["p1"]
  assert len(first["selection_train"]) == 16 and len(first["selection"]) == 4
  assert not set(first["selection_train"]) & set(first["selection"])
  assert sorted(first["selection_train"] + first["selection"]) == sorted(first["train"])
  assert ids["p2"] == first


def test_median_frequency_weights_by_hand():
  # Shares 0.5, 0.3, 0.2, 0: median of the present ones is 0.3.
  weights = statistics.median_frequency_weights(np.array([50, 30, 20, 0]))
  np.testing.assert_allclose(weights, [0.6, 1.0, 1.5, 0.0])


def test_camvid_test_split_appears_when_present(tmp_path, monkeypatch, capsys, caplog):
  root = fake_data.make_camvid(tmp_path / "camvid")
  prepared = str(tmp_path / "p")
  temporary = tmp_path / "temporary"
  temporary.mkdir()
  monkeypatch.setattr(tempfile, "tempdir", str(temporary))
  assert "test" not in sources.Source("camvid", data_dir=str(root),
                                       prepared_dir=prepared).available_splits()
  printed = capsys.readouterr().out
  assert printed.startswith(f"Preparing camvid from {root} into {prepared}") and \
      "Unknown size" not in printed and printed.count("\n") == 1
  assert not os.listdir(temporary)
  assert not [record.message for record in caplog.records if record.levelno >= logging.WARNING]
  sources.Source("camvid", data_dir=str(root), prepared_dir=prepared)
  assert not capsys.readouterr().out
  fake_data.make_camvid(root, counts=(("test", 3),))
  later = sources.Source("camvid", data_dir=str(root), prepared_dir=prepared)
  assert later.num_examples("test") == 3 and later.num_examples("train") == 4


def _raw_examples(labels, images=None):
  labels = np.stack(labels)[..., None].astype(np.uint8)
  if images is None:
    images = np.zeros((*labels.shape[:3], 3), np.uint8)
  return tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})


def test_every_training_batch_has_a_positive_for_a_rare_category():
  labels = [np.zeros((8, 8)) for _ in range(40)]
  labels[7][2:4, 2:4] = 3  # one image in 40 has the category
  labels[30][0, 0] = 3
  dataset, positives, total = pipeline.make_train_dataset(
      _raw_examples(labels), category_id=3, void=255, image_size=(8, 8), batch_size=4,
      backbone="caffe", seed=0)
  assert (positives, total) == (2, 40)
  negatives_seen = 0
  for batch in dataset.take(200).as_numpy_iterator():
    per_image = batch["label"].reshape(4, -1).max(axis=1)
    assert per_image.max() == 1
    negatives_seen += int((per_image == 0).sum())
  assert negatives_seen > 400  # the other three slots keep the natural (mostly negative) mix


@pytest.mark.parametrize("category_id", [1, None])  # binary, multi-class
def test_a_resumed_stream_continues_with_the_batch_the_whole_stream_has_there(category_id):
  """Resuming after step k (skip_batches=k) gives batches k+1, k+2, ... of the uninterrupted
  stream, bit for bit, with every augmentation on (crops, scale and colour jitter, flips)."""
  rng = np.random.default_rng(5)
  labels = [rng.integers(0, 3, (20, 24)) * (rng.uniform(size=(20, 24)) < 0.3) for _ in range(9)]
  images = rng.integers(0, 255, (9, 20, 24, 3)).astype(np.uint8)
  make = lambda skip: pipeline.make_train_dataset(
      _raw_examples(labels, images), category_id=category_id, void=255, image_size=(20, 24),
      batch_size=3, backbone="caffe", seed=11, crop_size=(12, 16), scale_jitter=0.3,
      colour_jitter=0.2, class_aware_crops=category_id is None, skip_batches=skip)[0]
  # Without tf.data's autotuning thread, whose wake-ups (up to a minute apart) a deleted
  # iterator waits for at the end of a run.
  assert make(0).options().autotune.enabled is False
  whole = list(make(0).take(12).as_numpy_iterator())
  for stopped_after in (1, 5, 9):  # across epochs (9 images, 3 per batch)
    resumed = list(make(stopped_after).take(3).as_numpy_iterator())
    for expected, got in zip(whole[stopped_after:], resumed):
      for key in ("image", "label", "mask"):
        np.testing.assert_array_equal(got[key], expected[key])


def test_resize_is_bilinear_and_nearest_and_passes_an_example_of_its_size_through():
  rng = np.random.default_rng(0)
  example = {"image": rng.integers(0, 256, (12, 16, 3), dtype=np.uint8),
             "label": rng.integers(0, 3, (12, 16), dtype=np.uint8),
             "mask": rng.integers(0, 2, (12, 16), dtype=np.uint8)}
  for size in ((12, 16), (9, 20)):
    resized = pipeline.resize({k: tf.constant(v) for k, v in example.items()}, size)
    image = tf.image.resize(example["image"], size, method="bilinear").numpy()
    np.testing.assert_array_equal(resized["image"], np.clip(np.round(image), 0, 255))
    for key in ("label", "mask"):
      nearest = tf.image.resize(example[key][..., None], size, method="nearest")[..., 0]
      np.testing.assert_array_equal(resized[key], nearest)
      assert resized[key].shape == size
  same = pipeline.resize({k: tf.constant(v) for k, v in example.items()}, (12, 16))
  for key, value in example.items():
    np.testing.assert_array_equal(same[key], value)


def test_flip_keeps_image_label_and_mask_aligned():
  rng = np.random.default_rng(0)
  labels, images = [], []
  for _ in range(8):
    label = np.zeros((6, 10), np.uint8)
    label[:, rng.integers(0, 5)] = 1
    label[0, 9] = 255  # one void pixel
    image = np.zeros((6, 10, 3), np.uint8)
    image[..., 0] = 255 * (label == 1)  # red marks the object
    image[..., 1] = 255 * (label == 255)  # green marks the void pixel
    labels.append(label)
    images.append(image)
  dataset, _, _ = pipeline.make_train_dataset(
      _raw_examples(labels, np.stack(images)), category_id=1, void=255, image_size=(6, 10),
      batch_size=2, backbone="caffe", seed=3)
  flipped = 0
  for batch in dataset.take(20).as_numpy_iterator():
    bgr = batch["image"] + np.array(pipeline.CAFFE_BGR_MEAN, np.float32)
    np.testing.assert_array_equal(bgr[..., 2] > 128, batch["label"] == 1)
    np.testing.assert_array_equal(bgr[..., 1] > 128, batch["mask"] == 0)
    flipped += int((batch["mask"][:, 0, 0] == 0).sum())
  assert flipped > 0  # some batches were flipped (void moved to column 0)


def test_crops_keep_alignment_and_the_positive_image_holds_the_category():
  rng = np.random.default_rng(1)
  labels, images = [], []
  for index in range(30):
    label = np.zeros((40, 60), np.uint8)
    if index % 10 == 0:  # 3 images in 30 hold one 2x2 object somewhere
      row, col = rng.integers(0, 38), rng.integers(0, 58)
      label[row:row + 2, col:col + 2] = 1
    label[rng.integers(0, 40), rng.integers(0, 60)] = 255
    image = np.zeros((40, 60, 3), np.uint8)
    image[..., 0] = 255 * (label == 1)
    image[..., 1] = 255 * (label == 255)
    image[..., 2] = np.arange(60, dtype=np.uint8)[None, :]  # column index: tells the offset
    labels.append(label)
    images.append(image)
  dataset, _, _ = pipeline.make_train_dataset(
      _raw_examples(labels, np.stack(images)), category_id=1, void=255, image_size=(40, 60),
      batch_size=3, backbone="caffe", seed=5, crop_size=(12, 16))
  offsets = set()
  for batch in dataset.take(60).as_numpy_iterator():
    assert batch["image"].shape == (3, 12, 16, 3) and batch["label"].shape == (3, 12, 16)
    bgr = batch["image"] + np.array(pipeline.CAFFE_BGR_MEAN, np.float32)
    np.testing.assert_array_equal(bgr[..., 2] > 128, batch["label"] == 1)
    np.testing.assert_array_equal(bgr[..., 1] > 128, batch["mask"] == 0)
    assert batch["label"][0].max() == 1  # the positive slot's crop holds the object
    offsets.update(np.round(bgr[1:, 0, :, 0].min(axis=1)).astype(int).tolist())
  assert len(offsets) > 10  # crops of the other slots move over the image
  with pytest.raises(UserError, match="`crop_size`=50x16 is larger"):
    pipeline.make_train_dataset(_raw_examples(labels), category_id=1, void=255,
                                image_size=(40, 60), batch_size=2, backbone="caffe", seed=0,
                                crop_size=(50, 16))


def test_scale_jitter_rescales_within_range_and_keeps_thin_positives():
  labels, images = [], []
  for index in range(20):
    label = np.zeros((40, 60), np.uint8)
    if index % 5 == 0:  # 4 images in 20 hold a 1-pixel-wide pole a downscale can drop
      label[5:35, 10 + index] = 1
    image = np.zeros((40, 60, 3), np.uint8)
    image[..., 0] = 255 * (label == 1)
    image[..., 2] = 4 * np.arange(60, dtype=np.uint8)[None, :]  # 4 levels per column
    labels.append(label)
    images.append(image)
  dataset, _, _ = pipeline.make_train_dataset(
      _raw_examples(labels, np.stack(images)), category_id=1, void=255, image_size=(40, 60),
      batch_size=2, backbone="caffe", seed=2, crop_size=(24, 32), scale_jitter=0.5)
  slopes, agreement = [], []
  for batch in dataset.take(80).as_numpy_iterator():
    assert batch["label"].shape == (2, 24, 32)
    assert batch["label"][0].max() == 1  # the positive slot kept its pole
    bgr = batch["image"] + np.array(pipeline.CAFFE_BGR_MEAN, np.float32)
    ramp = np.abs(bgr[1, 12, :, 0])  # the other slot: blue ramp, 4 levels per source column
    slopes.append(np.median(np.abs(np.diff(ramp))) / 4)
    positive = batch["label"] == 1
    agreement.append(np.mean((bgr[..., 2] > 64)[positive]) if positive.any() else 1.0)
  slopes = np.array(slopes)
  # A factor f in [1/1.5, 1.5] makes one source column span f output columns.
  assert slopes.min() >= 1 / 1.5 - 0.05 and slopes.max() <= 1.5 + 0.05
  assert (slopes < 0.9).any() and (slopes > 1.1).any()  # both shrunk and enlarged
  assert np.mean(agreement) > 0.9  # labels stay on the object's (bilinear-blurred) pixels
  with pytest.raises(UserError, match="`scale_jitter`=0.5 needs `crop_size`"):
    pipeline.make_train_dataset(_raw_examples(labels), category_id=1, void=255,
                                image_size=(40, 60), batch_size=2, backbone="caffe", seed=0,
                                scale_jitter=0.5)


def test_colour_jitter_changes_images_only_within_its_strength():
  labels = [np.eye(16, dtype=np.uint8) for _ in range(10)]
  images = np.full((10, 16, 16, 3), 128, np.uint8)
  make = lambda strength: pipeline.make_train_dataset(
      _raw_examples(labels, images), category_id=1, void=255, image_size=(16, 16),
      batch_size=2, backbone="caffe", seed=4, colour_jitter=strength)[0]
  plain, jittered = (list(make(s).take(30).as_numpy_iterator()) for s in (0.0, 0.2))
  grey = 128 - np.array(pipeline.CAFFE_BGR_MEAN, np.float32)
  means = []
  for before, after in zip(plain, jittered):
    np.testing.assert_array_equal(before["label"], after["label"])
    assert np.abs(before["image"] - grey).max() <= 0.5  # strength 0: untouched
    means.append((after["image"] - grey).mean(axis=(1, 2, 3)))
  means = np.concatenate(means)
  assert np.std(means) > 5  # images differ in brightness
  # Brightness shifts by at most 0.2 of the range (51 levels); mid-grey has no contrast or
  # saturation to scale.
  assert np.abs(means).max() <= 0.2 * 255 + 1
  with pytest.raises(UserError, match=r"`colour_jitter`=1.5 must be in \[0, 1\)"):
    config.Config(colour_jitter=1.5)


def test_eval_keeps_original_sizes_and_padding_never_counts():
  sizes = [(5, 7), (8, 4), (6, 6)]
  examples = [{"image": np.full((*s, 3), 9, np.uint8),
               "label": np.ones((*s, 1), np.uint8)} for s in sizes]
  dataset = tf.data.Dataset.from_generator(
      lambda: iter(examples), output_signature={
          "image": tf.TensorSpec((None, None, 3), tf.uint8),
          "label": tf.TensorSpec((None, None, 1), tf.uint8)})
  evaluation = pipeline.make_eval_dataset(dataset, category_id=1, void=255, pad_to=(8, 8),
                                          batch_size=2, backbone="torchvision")
  assert evaluation.options().autotune.enabled is False  # (as training's, above)
  batches = list(evaluation.as_numpy_iterator())
  accumulator = metrics.IoUAccumulator()
  for batch in batches:
    batch, valid = pipeline.pad_batch(batch, 2)
    for i in np.flatnonzero(valid):
      h, w = batch["height"][i], batch["width"][i]
      assert (h, w) in sizes and batch["mask"][i].sum() == h * w
    # Predict foreground everywhere, padding included: only real pixels may count.
    accumulator.add(metrics.confusion_counts(np.ones(batch["label"].shape), batch["label"],
                                             batch["mask"], per_image=True), valid)
  result = accumulator.result()
  assert result["iou"] == 1.0 and result["fp"] == 0
  assert result["tp"] == sum(h * w for h, w in sizes) and result["images"] == 3


# Bad input: each case gives one clear error naming the file or flag.

def _prepare_voc(root):
  return sources.Source("voc2012", data_dir=str(root), prepared_dir=str(root / "prepared"))


def test_missing_data_without_network(tmp_path, monkeypatch):
  monkeypatch.setenv("FCN_IOU_OFFLINE", "1")
  with pytest.raises(UserError, match=r"no voc2012 data there.*download http.*VOCtrainval"
                                      r".*\(about 2 GB\)"):
    _prepare_voc(tmp_path)
  # The default folder (no --data_dir given): the message names it, not a flag never passed.
  monkeypatch.setenv("FCN_IOU_DATA_DIR", str(tmp_path / "data"))
  with pytest.raises(UserError) as missing:
    sources.Source("voc2012", prepared_dir=str(tmp_path / "prepared"))
  assert str(missing.value).startswith(f"no voc2012 data in the default folder "
                                       f"{tmp_path / 'data' / 'voc2012'} ")
  assert "extract it there (no flag needed)" in str(missing.value)


@pytest.mark.parametrize("folder", ["CamVid", "camvid", "CAMVID"])
def test_camvid_is_found_in_its_folder_or_its_parent_whatever_its_case(tmp_path, folder):
  fake_data.make_camvid(str(tmp_path / folder), counts=(("train", 2),))
  for given in (tmp_path, tmp_path / folder):
    source = sources.Source("camvid", data_dir=str(given), prepared_dir=str(tmp_path / "p"))
    assert source.num_examples("train") == 2


def test_empty_split_list(tmp_path):
  base, _ = fake_data.make_voc(tmp_path)
  open(os.path.join(base, "ImageSets", "Segmentation", "train.txt"), "w").close()
  with pytest.raises(UserError, match="train.txt: split list is empty"):
    _prepare_voc(tmp_path)


def test_a_line_listed_twice_is_named(tmp_path):
  base, _ = fake_data.make_voc(tmp_path)
  path = os.path.join(base, "ImageSets", "Segmentation", "train.txt")
  with open(path, encoding="utf-8") as handle:
    lines = handle.read().split()
  with open(path, "a", encoding="utf-8") as handle:
    handle.write(f"\n{lines[0]}\n")
  with pytest.raises(UserError, match=rf"train.txt: line {len(lines) + 2} repeats line 1 "):
    _prepare_voc(tmp_path)
  assert not any((tmp_path / "prepared").rglob("*.tfrecord*"))  # refused before preparing


def test_an_image_larger_than_the_evaluation_size_is_named_at_preparation(tmp_path):
  root = tmp_path / "CamVid"
  fake_data.make_camvid(str(root), counts=(("train", 2),), size=(36, 48))
  Image.fromarray(np.zeros((720, 960, 3), np.uint8)).save(root / "train" / "train_001.png")
  with pytest.raises(UserError, match=r"train_001.png: 960x720 is larger than this dataset's "
                                      r"evaluation size 480x360"):
    sources.Source("camvid", data_dir=str(root), prepared_dir=str(tmp_path / "prepared"))


def test_a_label_edited_in_place_is_prepared_again(tmp_path):
  root = tmp_path / "CamVid"
  fake_data.make_camvid(str(root), counts=(("train", 2),), size=(36, 48))
  prepared = str(tmp_path / "prepared")
  read = lambda: {e["image_id"].decode(): e["label"][..., 0] for e in sources.Source(
      "camvid", data_dir=str(root), prepared_dir=prepared).examples("train").as_numpy_iterator()}
  before = read()
  path = root / "trainannot" / "train_001.png"
  edited = np.full((36, 48), 3, np.uint8)
  Image.fromarray(edited, mode="L").save(path)
  os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
  after = read()
  np.testing.assert_array_equal(after["train_001"], edited)
  np.testing.assert_array_equal(after["train_000"], before["train_000"])


PREPARE_WHEN_TOLD = """import os, sys, time
from fcn_iou_jax.data import sources
print("ready", flush=True)
while not os.path.exists(sys.argv[3]):
  time.sleep(0.01)
sources.Source("camvid", data_dir=sys.argv[1], prepared_dir=sys.argv[2])
"""


@pytest.mark.slow
def test_processes_started_together_prepare_a_dataset_once(tmp_path):
  """Two processes asking for the same unprepared dataset at the same moment: one prepares
  it, the other waits and reads it (without the lock the second one's rename fails)."""
  root = tmp_path / "CamVid"
  fake_data.make_camvid(str(root), counts=(("train", 6), ("val", 4)), size=(36, 48))
  go = tmp_path / "go"
  children = [subprocess.Popen([sys.executable, "-c", PREPARE_WHEN_TOLD, str(root),
                                str(tmp_path / "prepared"), str(go)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(2)]
  for child in children:
    assert child.stdout.readline().strip() == "ready"
  go.write_text("")
  outputs = [child.communicate(timeout=300) for child in children]
  assert [child.returncode for child in children] == [0, 0], outputs
  assert sum(out.count("Preparing camvid") for out, _ in outputs) == 1, outputs


def test_missing_train_list(tmp_path):
  base, _ = fake_data.make_voc(tmp_path, splits=("val",))
  with pytest.raises(UserError, match="train split list is missing"):
    _prepare_voc(tmp_path)


@pytest.mark.parametrize("damage, message", [
    ("missing_image", r"2007_000001.jpg: image file is listed but missing"),
    ("corrupt_image", r"2007_000001.jpg: corrupt or unreadable image"),
    ("corrupt_label", r"2007_000001.png: corrupt or unreadable label"),
    ("size_mismatch", r"2007_000001.png: label is 7x5 but its image"),
    ("out_of_range", r"2007_000001.png: label value 42 is out of range"),
])
def test_bad_files_are_named(tmp_path, damage, message):
  base, ids = fake_data.make_voc(tmp_path)
  image = os.path.join(base, "JPEGImages", f"{ids[1]}.jpg")
  label = os.path.join(base, "SegmentationClass", f"{ids[1]}.png")
  if damage == "missing_image":
    os.remove(image)
  elif damage == "corrupt_image":
    with open(image, "r+b") as handle:
      handle.truncate(100)
  elif damage == "corrupt_label":
    with open(label, "wb") as handle:
      handle.write(b"\x89PNG not really")
  elif damage == "size_mismatch":
    fake_data.write_palette_png(label, np.zeros((5, 7), np.uint8))
  else:
    fake_data.write_palette_png(label, np.full((60, 40), 42, np.uint8))
  with pytest.raises(UserError, match=message):
    _prepare_voc(tmp_path)


def test_unknown_category_and_dataset():
  with pytest.raises(UserError, match="valid: sky, building, pole"):
    categories.CAMVID.category_id("horse", dataset="camvid")
  assert categories.VOC.category_id("TV/Monitor", dataset="voc") == 20
  assert categories.VOC.category_id("dining table", dataset="voc") == 11
  assert categories.CAMVID.category_id("Column-Pole", dataset="camvid") == 2
  with pytest.raises(UserError, match="`dataset`='kitti' is unknown"):
    sources.get_spec("kitti")
  assert sorted(config.DATASET_NAMES) == sorted(sources.DATASETS)  # what run.py's flags offer
  assert sorted(categories.BY_DATASET) == sorted(sources.DATASETS)  # what reproduce.py checks


def test_training_without_any_positive_is_refused():
  with pytest.raises(UserError, match="no training image contains"):
    pipeline.make_train_dataset(_raw_examples([np.zeros((4, 4))] * 3), category_id=1, void=255,
                                image_size=(4, 4), batch_size=2, backbone="caffe", seed=0)


def test_eval_input_scale_resizes_images_but_never_labels():
  examples = tf.data.Dataset.from_tensor_slices({
      "image": np.zeros((1, 6, 8, 3), np.uint8), "label": np.ones((1, 6, 8, 1), np.uint8)})
  batch = next(pipeline.make_eval_dataset(examples, category_id=1, void=255, pad_to=(8, 8),
                                          batch_size=1, backbone="caffe",
                                          input_scale=0.5).as_numpy_iterator())
  assert batch["image"].shape == (1, 4, 4, 3) and batch["label"].shape == (1, 8, 8)
  assert batch["mask"].sum() == 48 and (batch["height"][0], batch["width"][0]) == (6, 8)


@pytest.mark.parametrize("disk_ratio, bar_ratio", [(8.0, 47.0), (30.0, 15.0)])
def test_synthetic_kinds_have_the_pixel_shares_they_are_set_to(disk_ratio, bar_ratio):
  spec = synthetic.SyntheticSpec(background_to_object=disk_ratio,
                                 bar_background_to_object=bar_ratio)
  labels = np.stack([synthetic.make_example(spec, "train", i)[1]
                     for i in range(synthetic.SPLIT_SIZES["train"])])
  counts = np.bincount(labels.reshape(-1), minlength=3)
  # background:object per kind, each kind against every other pixel, over the split
  for kind, ratio in ((1, disk_ratio), (2, bar_ratio)):
    measured = (counts.sum() - counts[kind]) / counts[kind]
    assert measured == pytest.approx(ratio, rel=0.25), (kind, measured)
  bar_heights = {int((label == 2).any(axis=1).sum()) for label in labels if (label == 2).any()}
  expected = round(spec.height / (1 + bar_ratio) / synthetic.BAR_RATE)
  assert bar_heights <= {expected}  # rows a disk covers do not count as bar rows


def test_compact_camvid_copy_reads_like_the_original(tmp_path):
  import compact_camvid
  root = fake_data.make_camvid(tmp_path / "camvid", counts=(("train", 3), ("val", 2)))
  rows, cols = np.mgrid[:36, :48]
  images = sorted((root / "train").iterdir()) + sorted((root / "val").iterdir())
  for index, path in enumerate(images):
    smooth = np.stack([rows * 5 + index, cols * 4, (rows + cols) * 3], -1)  # a photo-like image
    Image.fromarray(smooth.astype(np.uint8)).save(path)
  counts = compact_camvid.compact_copy(str(root), str(tmp_path / "compact"), quality=95)
  assert counts == {"train": 3, "val": 2}
  original, compact = (sources.Source("camvid", data_dir=str(folder),
                                      prepared_dir=str(tmp_path / f"p-{folder.name}"))
                       for folder in (root, tmp_path / "compact"))
  for split in ("train", "val"):
    pairs = zip(*(sorted(source.examples(split).as_numpy_iterator(),
                         key=lambda e: e["image_id"]) for source in (original, compact)))
    for before, after in pairs:
      assert before["image_id"] == after["image_id"]
      np.testing.assert_array_equal(after["label"], before["label"])  # labels are exact
      difference = np.abs(after["image"].astype(int) - before["image"].astype(int))
      assert 0 < difference.mean() < 2  # JPEG: close, not equal
