"""Class names, void labels, display colours and ``--category`` aliases of each dataset.

``--category=all`` (:data:`ALL`) names every class at once: one multi-class model.
"""

from __future__ import annotations

import dataclasses

from fcn_iou_jax.errors import UserError


ALL = "all"  # the --category of a multi-class run: every class of the dataset


@dataclasses.dataclass(frozen=True)
class LabelSpace:
  """Class ids ``0..len(names)-1``; ``void`` marks pixels that count for nothing;
  ``colours`` are the dataset's own RGB colour per class (its label images' palette)."""
  names: tuple[str, ...]
  void: int
  colours: tuple[tuple[int, int, int], ...]
  aliases: dict[str, str] = dataclasses.field(default_factory=dict)

  def target(self, name: str, *, dataset: str) -> int | None:
    """What a run learns: the class id of ``--category=name`` (one binary model), or
    ``None`` for ``--category=all`` (every class, one multi-class model)."""
    if _normalise(name) == ALL:
      return None
    return self.category_id(name, dataset=dataset)

  def category_id(self, name: str, *, dataset: str, setting: str = "category") -> int:
    """Id of ``name`` (case, spaces, '-' and '/' ignored); UserError naming ``setting`` and
    listing valid names."""
    key = _normalise(name)
    key = self.aliases.get(key, key)
    lookup = {_normalise(n): i for i, n in enumerate(self.names)}
    if key not in lookup or self.names[lookup[key]] == "background":
      valid = ", ".join(n for n in self.names if n != "background")
      every = f", or {ALL} (every class)" if setting == "category" else ""
      raise UserError(f"`{setting}`={name!r} is not a {dataset} category; valid: {valid}{every}")
    return lookup[key]

  def category_ids(self, names: str, *, dataset: str, setting: str) -> dict[str, int]:
    """Each name of the comma-separated ``names`` with its id; UserError as
    :meth:`category_id` on the first unknown one."""
    return {name: self.category_id(name, dataset=dataset, setting=setting)
            for name in names.split(",")}


def voc_palette(count: int) -> tuple[tuple[int, int, int], ...]:
  """The PASCAL VOC colour map: class ``i``'s bits, three at a time, go to the high bits of
  R, G and B (bit 0 -> R, 1 -> G, 2 -> B, from bit 7 of each channel downwards)."""
  colours = []
  for index in range(count):
    rgb, value = [0, 0, 0], index
    for shift in range(7, -1, -1):
      for channel in range(3):
        rgb[channel] |= ((value >> channel) & 1) << shift
      value >>= 3
    colours.append(tuple(rgb))
  return tuple(colours)


def _normalise(name: str) -> str:
  return "".join(ch for ch in name.lower() if ch.isalnum() or ch == "_").replace("_", "")


VOC = LabelSpace(
    names=("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
           "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
           "sheep", "sofa", "train", "tvmonitor"),
    void=255,
    colours=voc_palette(21),
    aliases={"tv": "tvmonitor", "monitor": "tvmonitor", "airplane": "aeroplane",
             "motorcycle": "motorbike", "plant": "pottedplant"},
)

CAMVID = LabelSpace(
    names=("sky", "building", "pole", "road", "pavement", "tree", "sign_symbol", "fence", "car",
           "pedestrian", "bicyclist"),
    void=11,
    # The SegNet CamVid colours of the 11 classes.
    colours=((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
             (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0),
             (0, 128, 192)),
    aliases={"columnpole": "pole", "sidewalk": "pavement", "signsymbol": "signsymbol",
             "sign": "signsymbol"},
)

SYNTHETIC = LabelSpace(names=("background", "disk", "bar"), void=255, colours=voc_palette(3))

# The label space of each --dataset (config.DATASET_NAMES), without importing TensorFlow.
BY_DATASET = {"voc2010": VOC, "voc2011": VOC, "voc2012": VOC, "camvid": CAMVID,
              "synthetic": SYNTHETIC}
