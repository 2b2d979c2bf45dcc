"""Pre-train one shared backbone on all classes of a dataset's training split, for --init.

Stands in for the ImageNet initialisation that cannot be downloaded here: FCN-32s with one
output per class is trained with per-pixel softmax cross-entropy on the 80% of the train list
that run.py trains on (never the selection, val or test images), by default weighted by
median-frequency balancing so that rare thin classes (pole, sign) shape the features too, and
conv1-fc7 are saved as a torchvision-style .npz. Both losses are then fine-tuned from the same
file, which is the paper's regime (fine-tuning a pretrained network with each loss).

  python experiments/pretrain_backbone.py --dataset=camvid --data_dir=../shared/data/camvid \\
      --width_mult=0.25 --image_size=360x480 --crop_size=180x240 --train_steps=2000 \\
      --out=camvid_backbone.npz
  python experiments/run.py --dataset=camvid --category=pole --init=camvid_backbone.npz ...
"""

import functools
import os
import sys

from fcn_iou_jax import cli

if __name__ == "__main__":
  cli.restart_with_huge_pages()  # ~1.2x faster XLA:CPU steps; before JAX allocates anything

# pylint: disable=wrong-import-position,wrong-import-order
import jax
import numpy as np
from tqdm import tqdm

from fcn_iou_jax import config, losses, metrics, models, pretrained, steps
from fcn_iou_jax.data import statistics
from fcn_iou_jax.errors import UserError


def main(argv):
  parser = cli.make_parser(__doc__)
  cli.add_dataset_flags(parser, default_dataset="camvid")
  parser.add_argument("--backbone", default="caffe", choices=config.BACKBONE_NAMES,
                      help="AlexNet layout (run.py's --backbone must match)")
  parser.add_argument("--width_mult", type=cli.positive(float, "width_mult"), default=0.25,
                      help="scales every channel count (run.py's --width_mult must match)")
  parser.add_argument("--fc6_kernel", type=int, default=6, choices=config.FC6_KERNELS,
                      help="fc6 as a 6x6 convolution (Long et al.) or the paper's literal 1x1")
  parser.add_argument("--image_size", type=cli.parse_size("image_size"), default=None,
                      help="training resize HxW (default: the dataset's training size)")
  parser.add_argument("--crop_size", type=cli.parse_size("crop_size"), default=None,
                      help="random training crop HxW after the resize (default: none)")
  parser.add_argument("--scale_jitter", type=float, default=0.0,
                      help="random rescale in [1/(1+s), 1+s] before the crop (default 0: off)")
  parser.add_argument("--colour_jitter", type=float, default=0.0,
                      help="random brightness/contrast/saturation strength (default 0: off)")
  parser.add_argument("--batch_size", type=cli.positive(int, "batch_size"), default=8,
                      help="images per step")
  parser.add_argument("--learning_rate", type=cli.positive(float, "learning_rate"), default=3e-4,
                      help="Adam step size")
  parser.add_argument("--train_steps", type=cli.positive(int, "train_steps"), default=1500,
                      help="Adam steps in all")
  parser.add_argument("--class_balance", default="median_frequency",
                      choices=["median_frequency", "none"],
                      help="per-class loss weights from the training pixels' class shares")
  parser.add_argument("--seed", type=int, default=0,
                      help="initialisation, dropout and data order")
  parser.add_argument("--score_splits", default="selection",
                      help="comma-separated splits on which, after training, each class's IoU "
                           "of the argmax prediction is printed (default: the held-out 20%% of "
                           "train; 'none' to skip)")
  parser.add_argument("--out", required=True, help=".npz to write")
  args = parser.parse_args(argv)
  if not args.out.endswith(".npz"):
    raise UserError(f"--out={args.out}: must end in .npz")
  cli.check_output_folder(os.path.dirname(args.out), f"--out={args.out}")
  # After parsing: these import TensorFlow, whose start-up lines would precede a flag error.
  from fcn_iou_jax import evaluation  # pylint: disable=import-outside-toplevel
  from fcn_iou_jax.data import pipeline, sources  # pylint: disable=import-outside-toplevel
  cli.hide_accelerators_from_tensorflow()
  source = sources.Source(args.dataset, data_dir=args.data_dir, prepared_dir=args.prepared_dir)
  labels = source.spec.labels
  score_splits = [] if args.score_splits == "none" else args.score_splits.split(",")
  missing = sorted(set(score_splits) - set(source.available_splits()))
  if missing:  # before hours of training, not after
    raise UserError(f"--score_splits: {', '.join(missing)} not on disk for {args.dataset} "
                    f"(available: {', '.join(source.available_splits())})")
  model = models.FCN32s(backbone=args.backbone, width_mult=args.width_mult,
                        fc6_kernel=args.fc6_kernel, num_classes=len(labels.names))
  tx = steps.make_optimizer("adam", learning_rate=args.learning_rate, momentum=0.0,
                            weight_decay=5e-4)
  class_weights = None
  if args.class_balance == "median_frequency":
    counts = statistics.class_pixel_counts(source.examples("selection_train"), len(labels.names))
    class_weights = statistics.median_frequency_weights(counts)
    print("class weights: " + ", ".join(f"{name} {weight:.2f}" for name, weight
                                        in zip(labels.names, class_weights)))
  loss_fn = functools.partial(losses.multiclass_cross_entropy_loss, class_weights=class_weights)
  parallel = steps.ParallelSteps("pmap", model=model, loss_fn=loss_fn, tx=tx)
  init_key, dropout_key = jax.random.split(jax.random.key(args.seed))
  state = parallel.put_state(steps.create_train_state(models.init_params(model, init_key), tx,
                                                      dropout_key))
  batches = pipeline.make_multiclass_train_dataset(
      source.examples("selection_train"), void=labels.void,
      image_size=args.image_size or source.spec.train_size,
      batch_size=args.batch_size, backbone=args.backbone, seed=args.seed,
      crop_size=args.crop_size, scale_jitter=args.scale_jitter, colour_jitter=args.colour_jitter,
      device_count=parallel.pipeline_device_count).as_numpy_iterator()
  bar = tqdm(range(1, args.train_steps + 1), unit="step", mininterval=2.0)
  for step in bar:
    state, step_metrics = parallel.train(state, parallel.put_batch(next(batches)))
    if step % 50 == 0:
      loss = float(parallel.first(step_metrics["loss"]))
      if not np.isfinite(loss):
        raise UserError(f"loss became {loss} at step {step}; lower --learning_rate")
      bar.set_postfix(loss=f"{loss:.3f}")
  params = parallel.get_state(state).params
  temporary = f"{args.out}.tmp.npz"
  np.savez(temporary, **pretrained.export_alexnet_state(params))
  os.replace(temporary, args.out)
  print(f"wrote {args.out}: conv1-fc7 of a {args.backbone} backbone at width {args.width_mult}")
  image_size = args.image_size or source.spec.train_size
  host_params = jax.device_get(params)
  for split in score_splits:
    confusion = evaluation.split_confusion(
        model, host_params, source, split, input_scale=image_size[0] / source.spec.train_size[0],
        backbone=args.backbone)
    ious = [iou or 0.0 for iou in metrics.segmentation_scores(confusion)["per_class_iou"]]
    print(f"{split} IoU per class (argmax, %): "
          + ", ".join(f"{name} {100 * iou:.1f}" for name, iou in zip(labels.names, ious)))


if __name__ == "__main__":
  sys.exit(cli.run(main))
