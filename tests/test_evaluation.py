"""A split's scores over batches (a short last one) against the same counts taken one image
at a time; an evaluator that keeps a split's pipeline scores each model as a fresh one does."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fcn_iou_jax import evaluation, losses, models, steps
from fcn_iou_jax.data import pipeline, sources


def _narrow_model_and_params():
  model = models.FCN32s(width_mult=0.0625)
  params = _with_score_spread(models.init_params(model, jax.random.key(0)), seed=1)
  parallel = steps.parallel_steps("pmap", model=model, tx=optax.sgd(0.1),
                                  loss_fn=losses.soft_iou_loss_from_logits)
  return model, params, parallel


def _with_score_spread(params, seed):
  """``params`` with a score layer of some spread, so that predictions differ between
  images."""
  kernel = 0.05 * jax.random.normal(jax.random.key(seed), params["score"]["kernel"].shape)
  return dict(params, score=dict(params["score"], kernel=kernel))


def test_split_scores_count_every_image_once_as_one_image_at_a_time_does():
  source = sources.Source("synthetic")  # 40 val images of 96x128: no padding
  model, params, parallel = _narrow_model_and_params()
  result = evaluation.evaluate_split(parallel, parallel.put_state(params), source, "val",
                                     category_id=1, batch_size=6, backbone="caffe")

  apply = jax.jit(lambda image: model.apply({"params": params}, image[None], train=False)[0])
  totals, images = {"tp": 0, "fp": 0, "fn": 0}, 0
  for example in source.examples("val").as_numpy_iterator():
    classes = example["label"][..., 0]
    valid, positive = classes != source.spec.labels.void, classes == 1
    predicted = np.asarray(apply(jnp.asarray(pipeline.normalize_image(example["image"],
                                                                      "caffe"))) > 0)
    counts = {"tp": np.sum(predicted & positive & valid),
              "fp": np.sum(predicted & ~positive & valid),
              "fn": np.sum(~predicted & positive & valid)}
    for name, value in counts.items():
      totals[name] += int(value)
    images += 1

  assert result["images"] == images == 40  # 7 batches of 6, the last holding 4
  assert {name: result[name] for name in totals} == totals
  assert 0 < totals["tp"] and 0 < totals["fp"]  # a prediction that varies, not a constant
  assert result["iou"] == totals["tp"] / (totals["tp"] + totals["fp"] + totals["fn"])


def test_an_evaluator_builds_a_split_pipeline_once_and_scores_each_params_afresh(monkeypatch):
  source = sources.Source("synthetic")
  _, params, parallel = _narrow_model_and_params()
  params_a, params_b = (parallel.put_state(_with_score_spread(params, seed))
                        for seed in (1, 2))
  settings = {"category_id": 1, "batch_size": 6, "backbone": "caffe"}
  fresh = [evaluation.evaluate_split(parallel, params, source, "val", **settings)
           for params in (params_a, params_b)]
  built = []
  make_eval_dataset = pipeline.make_eval_dataset
  monkeypatch.setattr(pipeline, "make_eval_dataset",
                      lambda *args, **kwargs: built.append(1) or make_eval_dataset(*args, **kwargs))

  evaluate = evaluation.SplitEvaluator(parallel, source, **settings)
  scored = [evaluate(params, "val") for params in (params_a, params_b, params_a)]

  assert len(built) == 1
  assert scored == [fresh[0], fresh[1], fresh[0]]
  assert fresh[0] != fresh[1]
