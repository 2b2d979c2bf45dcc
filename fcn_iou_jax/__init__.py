"""fcn-iou-jax: FCN-32s trained with a directly optimised soft-IoU loss (Rahman & Wang 2016)."""

import os

# TensorFlow (used only for tf.data) logs start-up chatter at INFO; keep users' consoles clean.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
