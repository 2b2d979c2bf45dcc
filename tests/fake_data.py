"""Small fake datasets written by tests: a VOCdevkit and a SegNet-layout CamVid folder."""

import os

import numpy as np
from PIL import Image

VOC_PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [i % 256 for i in range(9, 768)]


def write_palette_png(path, indices):
  image = Image.fromarray(indices.astype(np.uint8), mode="P")
  image.putpalette(VOC_PALETTE)
  image.save(path)


def make_voc(root, sizes=((40, 60), (60, 40), (33, 50)), year="2012", splits=("train",),
             category=15):
  """A VOCdevkit under ``root`` with one image per size; returns the list of ids."""
  base = os.path.join(root, "VOCdevkit", f"VOC{year}")
  for sub in ("JPEGImages", "SegmentationClass", os.path.join("ImageSets", "Segmentation")):
    os.makedirs(os.path.join(base, sub), exist_ok=True)
  rng = np.random.default_rng(0)
  ids = []
  for index, (height, width) in enumerate(sizes):
    image_id = f"2007_{index:06d}"
    ids.append(image_id)
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(
        os.path.join(base, "JPEGImages", f"{image_id}.jpg"))
    label = np.zeros((height, width), np.uint8)
    label[5:15, 5:20] = category
    label[5:15, 20] = 255  # void border, as VOC draws around objects
    write_palette_png(os.path.join(base, "SegmentationClass", f"{image_id}.png"), label)
  for split in splits:
    with open(os.path.join(base, "ImageSets", "Segmentation", f"{split}.txt"), "w") as handle:
      handle.write("\n".join(ids) + "\n")
  return base, ids


def make_camvid(root, counts=(("train", 4), ("val", 2)), size=(36, 48)):
  """A SegNet-layout CamVid folder with upstream-style absolute paths in the lists."""
  rng = np.random.default_rng(1)
  for split, count in counts:
    os.makedirs(os.path.join(root, split), exist_ok=True)
    os.makedirs(os.path.join(root, f"{split}annot"), exist_ok=True)
    lines = []
    for index in range(count):
      name = f"{split}_{index:03d}.png"
      Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(
          os.path.join(root, split, name))
      label = rng.integers(0, 12, size).astype(np.uint8)
      Image.fromarray(label, mode="L").save(os.path.join(root, f"{split}annot", name))
      lines.append(f"/SegNet/CamVid/{split}/{name} /SegNet/CamVid/{split}annot/{name}")
    with open(os.path.join(root, f"{split}.txt"), "w") as handle:
      handle.write("\n".join(lines) + "\n")
  return root
