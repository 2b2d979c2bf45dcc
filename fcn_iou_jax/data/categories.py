"""Class names, void labels and ``--category`` aliases of each dataset."""

from __future__ import annotations

import dataclasses

from fcn_iou_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class LabelSpace:
  """Class ids ``0..len(names)-1``; ``void`` marks pixels that count for nothing."""
  names: tuple[str, ...]
  void: int
  aliases: dict[str, str] = dataclasses.field(default_factory=dict)

  def category_id(self, name: str, *, dataset: str, flag: str = "--category") -> int:
    """Id of ``name`` (case, spaces, '-' and '/' ignored); UserError listing valid names."""
    key = _normalise(name)
    key = self.aliases.get(key, key)
    lookup = {_normalise(n): i for i, n in enumerate(self.names)}
    if key not in lookup or self.names[lookup[key]] == "background":
      valid = ", ".join(n for n in self.names if n != "background")
      raise UserError(f"{flag}={name!r} is not a {dataset} category; valid: {valid}")
    return lookup[key]

  def category_ids(self, names: str, *, dataset: str, flag: str) -> dict[str, int]:
    """Each name of the comma-separated ``names`` with its id; UserError as
    :meth:`category_id` on the first unknown one."""
    return {name: self.category_id(name, dataset=dataset, flag=flag) for name in names.split(",")}


def _normalise(name: str) -> str:
  return "".join(ch for ch in name.lower() if ch.isalnum() or ch == "_").replace("_", "")


VOC = LabelSpace(
    names=("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
           "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
           "sheep", "sofa", "train", "tvmonitor"),
    void=255,
    aliases={"tv": "tvmonitor", "monitor": "tvmonitor", "airplane": "aeroplane",
             "motorcycle": "motorbike", "plant": "pottedplant"},
)

CAMVID = LabelSpace(
    names=("sky", "building", "pole", "road", "pavement", "tree", "sign_symbol", "fence", "car",
           "pedestrian", "bicyclist"),
    void=11,
    aliases={"columnpole": "pole", "sidewalk": "pavement", "signsymbol": "signsymbol",
             "sign": "signsymbol"},
)

SYNTHETIC = LabelSpace(names=("background", "disk", "bar"), void=255)

# The label space of each --dataset (config.DATASET_NAMES), without importing TensorFlow.
BY_DATASET = {"voc2010": VOC, "voc2011": VOC, "voc2012": VOC, "camvid": CAMVID,
              "synthetic": SYNTHETIC}
