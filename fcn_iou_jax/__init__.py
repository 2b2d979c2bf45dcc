"""fcn-iou-jax: FCN-32s trained with a directly optimised soft-IoU loss (Rahman & Wang 2016)."""

import os

# TensorFlow (used only for tf.data) logs start-up chatter at INFO; keep users' consoles clean.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Its oneDNN notice is printed before that level is read (with an absl warning line), so it
# is turned off at the source: tf.data's image ops here run no oneDNN kernels either way.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
