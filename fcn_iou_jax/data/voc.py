"""PASCAL VOC segmentation (2010, 2011, 2012) as a TFDS builder over a VOCdevkit.

Reads ``VOCdevkit/VOC20xx/{JPEGImages, SegmentationClass, ImageSets/Segmentation}``. Each
split listed in ``ImageSets/Segmentation/{train,val}.txt`` becomes a TFDS split; a split
whose list is missing is simply absent. Labels are the palette indices of the
``SegmentationClass`` PNGs: 0 background, 1..20 the classes, 255 void.
"""

from __future__ import annotations

import os

import tensorflow_datasets as tfds

from fcn_iou_jax.data import categories, files

YEARS = ("2010", "2011", "2012")
SPLITS = ("train", "val")
# The largest image evaluation takes (VOC images are at most 500x500): padded to, never resized.
EVAL_SIZE = (500, 500)
URLS = {
    "2010": "http://host.robots.ox.ac.uk/pascal/VOC/voc2010/VOCtrainval_03-May-2010.tar",
    "2011": "http://host.robots.ox.ac.uk/pascal/VOC/voc2011/VOCtrainval_25-May-2011.tar",
    "2012": "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
}


def find_year_dir(root: str, year: str) -> str | None:
  """``.../VOCdevkit/VOC<year>`` under ``root`` (which may be that folder, the VOCdevkit
  folder or its parent), or None."""
  for candidate in (root, os.path.join(root, f"VOC{year}"),
                    os.path.join(root, "VOCdevkit", f"VOC{year}")):
    if os.path.isdir(os.path.join(candidate, "ImageSets", "Segmentation")):
      return candidate
  return None


def split_lists(year_dir: str) -> dict[str, str]:
  lists = {s: os.path.join(year_dir, "ImageSets", "Segmentation", f"{s}.txt") for s in SPLITS}
  return {s: p for s, p in lists.items() if os.path.isfile(p)}


class VocSegmentation(tfds.core.GeneratorBasedBuilder):
  """PASCAL VOC segmentation with class-index masks (palette decoded with Pillow)."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=year) for year in YEARS]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Download VOCtrainval for the year from the PASCAL VOC site and extract it; pass the "
      "VOCdevkit folder (or its parent) as `data_dir`.")

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        description=f"PASCAL VOC{self.builder_config.name} segmentation, class-index masks.",
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
            "label": tfds.features.Image(shape=(None, None, 1), encoding_format="png"),
            "image_id": tfds.features.Text(),
        }),
        homepage="http://host.robots.ox.ac.uk/pascal/VOC/",
    )

  def _split_generators(self, dl_manager):
    year = self.builder_config.name
    year_dir = find_year_dir(str(dl_manager.manual_dir), year)
    return {split: self._generate_examples(year_dir, path)
            for split, path in split_lists(year_dir).items()}

  def _generate_examples(self, year_dir, list_path):
    num_classes = len(categories.VOC.names)
    for image_id, (image_path, label_path) in _pairs(year_dir, list_path):
      label = files.read_checked_pair(image_path, label_path, num_classes=num_classes,
                                      void=categories.VOC.void, max_size=EVAL_SIZE)
      yield image_id, {"image": image_path, "label": label, "image_id": image_id}


def _pairs(year_dir: str, list_path: str):
  """``(image id, (image path, label path))`` of each id in ``list_path``."""
  for image_id in files.read_list(list_path):
    yield image_id, (os.path.join(year_dir, "JPEGImages", f"{image_id}.jpg"),
                     os.path.join(year_dir, "SegmentationClass", f"{image_id}.png"))


def listed_files(year_dir: str, list_path: str) -> list[str]:
  """Every image and label file ``list_path`` names."""
  return [path for _, pair in _pairs(year_dir, list_path) for path in pair]

