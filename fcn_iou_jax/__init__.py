"""fcn-iou-jax: FCN-32s trained with a directly optimised soft-IoU loss (Rahman & Wang 2016)."""
