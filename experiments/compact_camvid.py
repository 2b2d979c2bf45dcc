"""A compact copy of a CamVid folder: JPEG images, the label PNGs unchanged, the same lists.

  python experiments/compact_camvid.py --data_dir=/path/to/CamVid --out=camvid_compact

The SegNet copy's train and val splits (119 MiB of PNGs) come to about 27 MiB at the default
quality: small enough to travel with the code to a machine without the dataset (a GPU box
reached through a size-limited copy) for timing a full run there. JPEG is lossy: scores
from the copy are close to, not equal to, those from the original images; the labels are
exact. run.py reads the copy like the original (``--data_dir=camvid_compact``).
"""

import os
import sys

from PIL import Image

from fcn_iou_jax import cli
from fcn_iou_jax.data import camvid
from fcn_iou_jax.errors import UserError


def compact_copy(source: str, out: str, quality: int) -> dict[str, int]:
  """Writes the copy of the CamVid folder ``source`` into ``out``; images per split."""
  root = camvid.find_root(source)
  if root is None:
    raise UserError(f"--data_dir={source}: no CamVid folder with train.txt there")
  counts = {}
  for split, list_path in camvid.split_lists(root).items():
    os.makedirs(os.path.join(out, split), exist_ok=True)
    os.makedirs(os.path.join(out, f"{split}annot"), exist_ok=True)
    listed = camvid.listed_files(root, split, list_path)  # image, label, image, ...
    pairs = list(zip(listed[::2], listed[1::2]))
    lines = []
    for index, (image_path, label_path) in enumerate(pairs, 1):
      name = os.path.splitext(os.path.basename(image_path))[0]
      with Image.open(image_path) as image:
        image.convert("RGB").save(os.path.join(out, split, f"{name}.jpg"), quality=quality)
      with open(label_path, "rb") as label, \
           open(os.path.join(out, f"{split}annot", os.path.basename(label_path)), "wb") as copy:
        copy.write(label.read())
      lines.append(f"{split}/{name}.jpg {split}annot/{os.path.basename(label_path)}")
      print(f"\r{split}: {index}/{len(pairs)}", end="", flush=True)
    print()
    with open(os.path.join(out, f"{split}.txt"), "w", encoding="utf-8") as handle:
      handle.write("\n".join(lines) + "\n")
    counts[split] = len(lines)
  return counts


def folder_mib(path: str) -> float:
  return sum(os.path.getsize(os.path.join(folder, name))
             for folder, _, names in os.walk(path) for name in names) / 2 ** 20


def main(argv):
  parser = cli.make_parser(__doc__)
  parser.add_argument("--data_dir", required=True, help="the CamVid folder (with train.txt)")
  parser.add_argument("--out", required=True, help="folder for the copy (created)")
  parser.add_argument("--quality", type=int, default=90, choices=range(50, 101),
                      metavar="50..100", help="JPEG quality of the images")
  args = parser.parse_args(argv)
  cli.check_output_folder(args.out, f"--out={args.out}")
  counts = compact_copy(args.data_dir, args.out, args.quality)
  print(f"{args.out}: " + ", ".join(f"{split} {n}" for split, n in counts.items())
        + f" images, {folder_mib(args.out):.1f} MiB")


if __name__ == "__main__":
  sys.exit(cli.run(main))
