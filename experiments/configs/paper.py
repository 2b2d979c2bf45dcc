"""The paper's protocol (Rahman & Wang 2016, Sec. 4.1): FCN-32s on Caffe's AlexNet from
ImageNet weights, SGD at 1e-4 with momentum 0.99 and weight decay 5e-4, whole images.

  python experiments/run.py --config=experiments/configs/paper.py --category=person \\
      --loss=iou --init=alexnet.npz
  python experiments/reproduce.py --grid=camvid --protocol=paper --init=alexnet.npz \\
      --data_dir=/path/to/CamVid

Result: the paper's Tables 1-4 (its numbers are in the reports' "paper's" rows); a run needs
ImageNet AlexNet weights (experiments/convert_weights.py) and a GPU or TPU for 20k steps at
full resolution. The paper states no batch size or step count: 4 and 20000 here.
"""

# No departures: this is what the other presets are compared with.
DEPARTURES = {}


def get_config() -> dict:
  """Every setting the presets are compared on, as the paper has it."""
  return {"backbone": "caffe", "width_mult": 1, "fc6_kernel": 6, "image_size": None,
          "crop_size": None, "scale_jitter": 0.0, "colour_jitter": 0.0, "optimizer": "sgd",
          "learning_rate": 1e-4, "momentum": 0.99, "weight_decay": 5e-4, "batch_size": 4,
          "train_steps": 20000, "eval_every": 500, "init": "imagenet", "dtype": "float32"}
