"""The fused train step, its optimizer and its on-device flips (in-process, tiny models)."""

from __future__ import annotations

import dataclasses
import inspect
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cutblur_jax import augment, models, sharding, train
from cutblur_jax.image import upsample_nearest

ARCH = models.model_arch("EDSR", 2, num_blocks=1, num_channels=8)


def _batch(seed: int, n: int = 4, lr_side: int = 8, scale: int = 2) -> dict[str, np.ndarray]:
  """Random LR patches and HR targets a network can learn (an affine map of their upsampling)."""
  rng = np.random.default_rng(seed)
  lr = rng.integers(0, 256, (n, lr_side, lr_side, 3), dtype=np.uint8)
  hr = np.asarray(upsample_nearest(lr, scale)) // 2 + 64
  return {"hr": hr.astype(np.uint8), "lr": lr}


def _copy(state: train.TrainState) -> train.TrainState:
  """A copy whose buffers survive the step's donation."""
  return jax.tree.map(jnp.copy, state)


@pytest.fixture(scope="module")
def moa_state():
  return train.create_train_state(jax.random.key(0), ARCH, policy=augment.moa())


# ------------------------------------------------------------------------------ optimizer


def test_learning_rate_schedule_is_multistep_after_each_update():
  optimizer = train.OptimizerConfig(learning_rate=1e-3, milestones=(3, 5), gamma=0.5)
  schedule = train.learning_rate_schedule(optimizer)
  got = [float(schedule(count)) for count in range(7)]
  # torch MultiStepLR stepped after every optimizer step: update k uses gamma ** #(m <= k).
  expected = [1e-3 * 0.5 ** sum(m <= k for m in (3, 5)) for k in range(7)]
  np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_optimizer_matches_torch_adam_with_clip_and_multistep():
  torch = pytest.importorskip("torch")
  rng = np.random.default_rng(0)
  x = rng.normal(size=(16, 5)).astype(np.float32)
  y = rng.normal(size=(16, 3)).astype(np.float32)
  w0 = rng.normal(size=(5, 3)).astype(np.float32)
  optimizer = train.OptimizerConfig(learning_rate=0.05, milestones=(2, 4), gamma=0.3, gclip=0.2)

  tx = train.create_optimizer(optimizer)
  w, state = jnp.asarray(w0), tx.init(jnp.asarray(w0))
  loss = lambda w: jnp.mean(jnp.abs(x @ w - y))
  ours = []
  for _ in range(6):
    grads = jax.grad(loss)(w)
    updates, state = tx.update(grads, state, w)
    w = optax.apply_updates(w, updates)
    ours.append(np.asarray(w))

  tw = torch.nn.Parameter(torch.tensor(w0))
  adam = torch.optim.Adam([tw], lr=0.05, betas=(0.9, 0.999), eps=1e-8)
  decay = torch.optim.lr_scheduler.MultiStepLR(adam, [2, 4], gamma=0.3)
  theirs = []
  for _ in range(6):
    adam.zero_grad()
    torch.mean(torch.abs(torch.tensor(x) @ tw - torch.tensor(y))).backward()
    torch.nn.utils.clip_grad_value_([tw], 0.2)
    adam.step()
    decay.step()
    theirs.append(tw.detach().numpy().copy())
  np.testing.assert_allclose(np.stack(ours), np.stack(theirs), rtol=1e-5, atol=1e-6)


def test_optimizer_config_from_config_and_clip_is_optional():
  config = train.resolve_config({"model": "RCAN", "pretrain": "x2", "dataset": "DIV2K_SR"})
  optimizer = train.OptimizerConfig.from_config(config)
  assert optimizer.milestones == (200_000, 400_000, 600_000, 800_000)
  assert optimizer.gclip == 0.5 and optimizer.gamma == 0.5 and optimizer.learning_rate == 1e-4
  params = {"w": jnp.ones(3)}
  clipped = train.create_optimizer(optimizer)
  plain = train.create_optimizer(optimizer._replace(gclip=0.0))
  assert len(jax.tree.leaves(clipped.init(params))) == len(jax.tree.leaves(plain.init(params)))
  grads = {"w": jnp.array([10.0, -10.0, 0.1])}
  # Clipping by value first: Adam's first update has magnitude lr for every nonzero entry either
  # way, so compare the second moments instead.
  _, clipped_state = clipped.update(grads, clipped.init(params), params)
  nu = [leaf for leaf in jax.tree.leaves(clipped_state) if leaf.shape == (3,)][-1]
  np.testing.assert_allclose(nu, (1 - 0.999) * np.array([0.25, 0.25, 0.01]), rtol=1e-5)


# ------------------------------------------------------------------------------ flips


def test_flip_and_rotate_pairs_hr_with_lr_and_is_uniform_over_the_eight_orientations():
  n = 4000
  lr = jnp.broadcast_to(jnp.arange(4, dtype=jnp.uint8).reshape(1, 2, 2, 1), (n, 2, 2, 1))
  hr = upsample_nearest(lr, 3)
  flip = jax.jit(train.random_flip_and_rotate)
  out_hr, out_lr = flip(jax.random.key(7), hr, lr)
  # Same transform on both: HR stays the nearest upsampling of LR.
  np.testing.assert_array_equal(out_hr, upsample_nearest(out_lr, 3))
  codes = np.asarray(out_lr).reshape(n, 4) @ np.array([64, 16, 4, 1])
  _, counts = np.unique(codes, return_counts=True)
  assert len(counts) == 8  # the dihedral group of the square, each orientation distinct
  # Each orientation has probability 1/8: 5 sigma bounds on a binomial(4000, 1/8).
  sigma = np.sqrt(n * 1 / 8 * 7 / 8)
  assert np.all(np.abs(counts - n / 8) < 5 * sigma), counts
  # Eager equals jit; under vmap (a batch of one per key) it runs too.
  eager_hr, _ = train.random_flip_and_rotate(jax.random.key(7), hr, lr)
  np.testing.assert_array_equal(eager_hr, out_hr)
  keys = jax.random.split(jax.random.key(1), 3)
  vmapped = jax.vmap(train.random_flip_and_rotate)(keys, hr[:3, None], lr[:3, None])
  assert vmapped[0].shape == (3, 1, 6, 6, 1)


def test_flip_and_rotate_rejects_non_square_patches():
  with pytest.raises(ValueError, match="square"):
    train.random_flip_and_rotate(
      jax.random.key(0), jnp.zeros((1, 4, 6, 3)), jnp.zeros((1, 2, 3, 3))
    )


# ------------------------------------------------------------------------------ the step


def test_train_step_is_the_documented_computation_and_learns():
  """Flips, nearest upsampling, the policy with fold_in(key, step), masked L1, Adam."""
  policy = augment.Policy(("cutout",), (1.0,), (0.3,))
  optimizer = train.OptimizerConfig(learning_rate=3e-3, milestones=(1,), gamma=0.5)
  state = train.create_train_state(jax.random.key(3), ARCH, policy=policy, optimizer=optimizer)
  batch = _batch(0)
  key = jax.random.key(11)
  model = models.create_model(ARCH)
  tx = train.create_optimizer(optimizer)

  @jax.jit
  def reference_step(params, opt_state, step):
    flip_key, augment_key = jax.random.split(jax.random.fold_in(key, step))
    hr, lr = train.random_flip_and_rotate(
      flip_key, jnp.asarray(batch["hr"]), jnp.asarray(batch["lr"])
    )
    hr, lr, mask, _ = augment.apply_augment(
      augment_key, hr.astype(jnp.float32), upsample_nearest(lr.astype(jnp.float32), 2), policy
    )
    loss_fn = lambda p: jnp.mean(jnp.abs(model.apply({"params": p}, lr) * mask - hr * mask))
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, jnp.mean(mask)

  params, opt_state = jax.tree.map(jnp.copy, (state.params, state.opt_state))
  losses = []
  for step in range(2):
    params, opt_state, loss, kept = reference_step(params, opt_state, step)
    assert 0 < float(kept) < 1  # cutout fired: the mask matters
    state, metrics = train.train_step(state, batch, key)
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["learning_rate"], 3e-3 * 0.5**step, rtol=1e-6)
    assert int(state.step) == step + 1 and bool(metrics["params_finite"])
    losses.append(float(metrics["loss"]))
  for ours, expected in zip(jax.tree.leaves(state.params), jax.tree.leaves(params)):
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-6)
  # And it learns: the masked loss on this fixed batch drops.
  for _ in range(30):
    state, metrics = train.train_step(state, batch, key)
    losses.append(float(metrics["loss"]))
  assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:2]), losses


def test_train_step_donates_its_state(moa_state):
  state = _copy(moa_state)
  leaf = jax.tree.leaves(state.params)[0]
  train.train_step(state, _batch(1), jax.random.key(0))
  assert leaf.is_deleted()


def test_one_executable_without_host_callbacks_and_moa_adds_no_compilation(moa_state):
  state = _copy(moa_state)
  batch, key = _batch(2), jax.random.key(5)
  compiled = train.train_step.lower(state, batch, key).compile()
  text = compiled.as_text()
  assert text.count("HloModule ") == 1
  targets = set(re.findall(r'custom_call_target="([^"]+)"', text))
  assert not [t for t in targets if "callback" in t.lower() or "host" in t.lower()], targets
  # Python callbacks lower to these custom calls (the text also holds a table of the Python
  # frames that traced the step, this test's name among them).
  assert "python_cpu_callback" not in text and "python_gpu_callback" not in text
  assert "outfeed" not in text.lower() and "infeed" not in text.lower()

  before = train.train_step._cache_size()  # pylint: disable=protected-access
  indices = []
  for step in range(12):
    state, metrics = train.train_step(state, _batch(step), key)
    indices.append(int(metrics["aug_index"]))
  after = train.train_step._cache_size()  # pylint: disable=protected-access
  assert len(set(indices)) >= 4, indices  # MoA picked several augmentations...
  assert after - before <= 1  # ...in one compiled program (at most this state's first entry)
  # A second state built alike reuses the same executable (static fields compare by value).
  twin = train.create_train_state(jax.random.key(9), ARCH, policy=augment.moa())
  train.train_step(twin, _batch(0), key)
  assert train.train_step._cache_size() == after  # pylint: disable=protected-access


def test_a_per_sample_policy_trains_and_logs_the_first_images_op():
  policy = dataclasses.replace(augment.moa(), per_sample=True)
  state = train.create_train_state(jax.random.key(0), ARCH, policy=policy)
  _, metrics = train.train_step(state, _batch(0), jax.random.key(3))
  assert metrics["aug_index"].shape == () and 0 <= int(metrics["aug_index"]) < 7
  assert np.isfinite(float(metrics["loss"]))


def test_train_step_is_deterministic_in_key_and_step(moa_state):
  batch = _batch(3)
  a, metrics_a = train.train_step(_copy(moa_state), batch, jax.random.key(1))
  b, metrics_b = train.train_step(_copy(moa_state), batch, jax.random.key(1))
  c, _ = train.train_step(_copy(moa_state), batch, jax.random.key(2))
  for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
    np.testing.assert_array_equal(x, y)
  assert float(metrics_a["loss"]) == float(metrics_b["loss"])
  assert any(
    not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(c.params))
  )


def test_abstract_train_state_matches_the_real_one(moa_state):
  mesh = sharding.create_mesh()
  params, opt_state = train.abstract_train_state(ARCH, moa_state.optimizer, mesh)
  real = (moa_state.params, moa_state.opt_state)
  assert jax.tree.structure((params, opt_state)) == jax.tree.structure(real)
  for abstract, leaf in zip(jax.tree.leaves((params, opt_state)), jax.tree.leaves(real)):
    assert abstract.shape == leaf.shape and abstract.dtype == leaf.dtype
    assert abstract.sharding == leaf.sharding


def test_train_keeps_its_public_entry_points():
  from cutblur_jax import training
  from cutblur_jax.training import loop, optimizer, state, step

  # `cutblur_jax.train` is the public entry; the code lives in `cutblur_jax.training`.
  assert train.train_and_evaluate is loop.train_and_evaluate
  assert train.train_step is step.train_step
  assert train.create_train_state is state.create_train_state
  assert train.TrainState is state.TrainState
  assert train.OptimizerConfig is optimizer.OptimizerConfig
  assert train.base_config is training.config.base_config
  assert set(train.__all__) == set(training.__all__)
  # (config, workdir) as before; options added since are keyword-only, with defaults.
  parameters = inspect.signature(train.train_and_evaluate).parameters
  assert list(parameters)[:2] == ["config", "workdir"]
  assert all(
    p.kind is p.KEYWORD_ONLY and p.default is not p.empty for p in list(parameters.values())[2:]
  )
  assert list(inspect.signature(train.train_step).parameters) == ["state", "batch", "key"]
  assert train.base_config().lr == 1e-4


# ------------------------------------------------------------------------------ EMA


def test_ema_follows_its_update_rule_and_leaves_the_raw_weights_alone():
  key = jax.random.key(4)
  off = train.create_train_state(jax.random.key(0), ARCH)
  on = train.create_train_state(jax.random.key(0), ARCH, ema_decay=0.9)
  assert off.ema_params is None and off.eval_params is off.params
  expected = [np.asarray(leaf) for leaf in jax.tree.leaves(on.params)]
  for step in range(3):
    off, _ = train.train_step(off, _batch(step), key)
    on, _ = train.train_step(on, _batch(step), key)
    raw = [np.asarray(leaf) for leaf in jax.tree.leaves(on.params)]
    for a, b in zip(raw, jax.tree.leaves(off.params)):
      np.testing.assert_array_equal(a, b)  # EMA never feeds back into training
    expected = [np.float32(0.9) * e + np.float32(0.1) * p for e, p in zip(expected, raw)]
    for ours, reference in zip(jax.tree.leaves(on.ema_params), expected):
      np.testing.assert_allclose(ours, reference, rtol=1e-6, atol=1e-7)
  assert on.eval_params is on.ema_params
  assert any(
    not np.array_equal(a, b)
    for a, b in zip(jax.tree.leaves(on.ema_params), jax.tree.leaves(on.params))
  )


def test_ema_off_compiles_todays_step_and_on_adds_only_the_average():
  batch, key = _batch(0), jax.random.key(0)
  today = train.create_train_state(jax.random.key(0), ARCH)  # the call without EMA arguments
  off = train.create_train_state(jax.random.key(0), ARCH, ema_decay=0.0)
  on = train.create_train_state(jax.random.key(0), ARCH, ema_decay=0.999)
  lowered = {
    name: train.train_step.lower(state, batch, key)
    for name, state in (("today", today), ("off", off), ("on", on))
  }
  assert lowered["off"].as_text() == lowered["today"].as_text()
  arguments = {name: len(jax.tree.leaves(low.args_info)) for name, low in lowered.items()}
  assert arguments["on"] == arguments["off"] + len(jax.tree.leaves(today.params))
  assert arguments["off"] == len(
    jax.tree.leaves((today.step, today.params, today.opt_state, batch, key))
  )
  # Both EMA settings share the executable cache key only with states built alike.
  before = train.train_step._cache_size()  # pylint: disable=protected-access
  train.train_step(_copy(off), batch, key)
  train.train_step(_copy(today), batch, key)
  assert train.train_step._cache_size() - before <= 1  # pylint: disable=protected-access


@pytest.mark.parametrize("decay", [-0.1, 1.0, 2.0])
def test_ema_decay_outside_zero_one_is_refused(decay):
  with pytest.raises(ValueError, match="ema_decay"):
    train.create_train_state(jax.random.key(0), ARCH, ema_decay=decay)
  with pytest.raises(ValueError, match="ema_decay"):
    train.resolve_config({"ema_decay": decay})
