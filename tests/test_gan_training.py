"""gan: training, checkpoint/resume, the shipped generators, the CLI."""
import os
import shutil

import keras
import numpy as np
import pytest

from gan.sampler import SampleGenerator
from gan.shipped import load_shipped, shipped_generator_path
from gan.trainer import latest_checkpoint, train_gan
from keras_aug.data import digits_arrays

TINY = dict(g_width=16, d_width=8, latent_dim=8)


@pytest.fixture(scope="module")
def digits16():
    images, labels = digits_arrays(size=16)
    return images[:60], labels[:60]


class _Kill(keras.callbacks.Callback):
    """Simulates a crash after `at` steps."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.step_counter.numpy()) == self.at:
            raise RuntimeError("killed")


def test_a_crash_keeps_the_last_checkpoint(digits16, tmp_path):
    """Exceptions inside fit (a kill) leave the checkpoints written so far, none half-written."""
    run = str(tmp_path / "run")
    with pytest.raises(RuntimeError, match="killed"):
        train_gan(digits16, run, steps=4, batch_size=8, checkpoint_every=2, sample_every=0,
                  verbose=False, callbacks=[_Kill(3)], policy=(), **TINY)
    assert sorted(os.listdir(os.path.join(run, "checkpoints"))) == ["ckpt-000002.npz"]
    assert os.path.exists(os.path.join(run, "generator.weights.h5"))


def test_load_raw_generator_with_ema_false(digits16, tmp_path):
    """ema=False samples from the weights being trained (the checkpoint's), not their average."""
    run = str(tmp_path / "run")
    result = train_gan(digits16, run, steps=2, batch_size=8, sample_every=0, verbose=False, policy=(), **TINY)
    raw, ema = SampleGenerator.load(run, ema=False), SampleGenerator.load(run)
    for a, b in zip(raw.generator.get_weights(), result.gan.generator.get_weights()):
        np.testing.assert_array_equal(a, b)
    raw_images, raw_labels = raw.sample(6, seed=0)
    ema_images, ema_labels = ema.sample(6, seed=0)
    assert raw_images.shape == ema_images.shape == (6, 16, 16, 1) and raw_images.dtype == np.uint8
    assert list(raw_labels) == list(ema_labels)
    assert np.abs(raw_images.astype(int) - ema_images.astype(int)).mean() > 0.5  # EMA lags 2 steps behind
    with pytest.raises(ValueError, match="ema=False needs a train_gan run folder.*weights.h5"):
        SampleGenerator.load(shipped_generator_path(0), ema=False)


@pytest.mark.slow
def test_resume_after_a_crash_repeats_the_uninterrupted_run(digits16, tmp_path):
    kwargs = dict(steps=6, batch_size=8, checkpoint_every=2, sample_every=3, verbose=False, **TINY)
    straight = train_gan(digits16, str(tmp_path / "a"), **kwargs)
    assert straight.history["step"] == [1, 2, 3, 4, 5, 6]
    assert os.path.exists(tmp_path / "a" / "samples" / "step-000003.png")

    # A run killed during step 6 (before its checkpoint): the folder as the crash left it.
    run = str(tmp_path / "b")
    shutil.copytree(tmp_path / "a", run)
    os.remove(os.path.join(run, "checkpoints", "ckpt-000006.npz"))
    assert latest_checkpoint(run).endswith("ckpt-000004.npz")  # lost at most one interval
    with pytest.raises(ValueError, match="already holds checkpoints.*resume=True"):
        train_gan(digits16, run, **kwargs)
    with pytest.raises(ValueError, match="config differs.*'seed': \\(1, 0\\)"):
        train_gan(digits16, run, resume=True, **{**kwargs, "seed": 1})
    resumed = train_gan(digits16, run, resume=True, **kwargs)

    assert resumed.history["step"] == [1, 2, 3, 4, 5, 6]  # counter continued from 4
    assert int(resumed.gan.g_optimizer.iterations.numpy()) == 6  # optimizer slots restored
    for key in ("d_loss", "g_loss", "d_class"):
        # no jump: the resumed steps 5-6 are the uninterrupted run's steps 5-6
        np.testing.assert_allclose(resumed.history[key], straight.history[key], rtol=1e-3, atol=1e-4)
    for a, b in zip(resumed.gan.ema_generator.get_weights(), straight.gan.ema_generator.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    # The run folder samples like any other.
    images, labels = SampleGenerator.load(run).sample(4, seed=0)
    assert images.shape == (4, 16, 16, 1) and images.dtype == np.uint8
    # Already at the requested total: nothing to do, same state.
    again = train_gan(digits16, run, resume=True, **kwargs)
    assert int(again.gan.step_counter.numpy()) == 6


def test_shipped_generators_are_conditioned_on_the_label():
    """A classifier trained on real digits recognises the requested class of generated ones."""
    from sklearn.linear_model import LogisticRegression

    real, real_labels = digits_arrays(size=32)
    pooled = real[:1000, :, :, 0].reshape(1000, 8, 4, 8, 4).mean(axis=(2, 4)).reshape(1000, 64)
    classifier = LogisticRegression(max_iter=2000).fit(pooled / 255.0, real_labels[:1000])
    for seed in (0, 1, 2):
        sampler = load_shipped(seed)
        assert sampler is not None, f"missing {shipped_generator_path(seed)}"
        assert sampler.config.extra["trained_on"] == (
            f"few_shot(load_dataset('digits').train, 10, seed={seed})")
        images, labels = sampler.sample(200, seed=0)
        assert images.shape == (200, 32, 32, 1) and images.dtype == np.uint8
        fake = images[:, :, :, 0].reshape(200, 8, 4, 8, 4).mean(axis=(2, 4)).reshape(200, 64)
        accuracy = (classifier.predict(fake / 255.0) == labels).mean()
        assert accuracy > 0.6, f"seed {seed}: requested class recognised in {accuracy:.2f} (chance 0.1)"
    assert os.path.getsize(shipped_generator_path(0)) * 3 < 3 * 2**20


def test_demo_row_is_registered():
    from kaug.demo import demo_rows

    (row,) = [r for r in demo_rows() if "GAN samples" in r.name]
    assert row.run is not None


def test_cli_sample_and_export(tmp_path):
    from kaug.cli import main

    grid, export = tmp_path / "grid.png", tmp_path / "saved"
    rc = main(["gan", "sample", "--checkpoint", shipped_generator_path(0), "--n", "12", "--label", "3",
               "--out", str(grid), "--export", str(export)])
    assert rc == 0 and grid.stat().st_size > 1000
    images, labels = SampleGenerator.load(str(export)).sample(3, labels=3, seed=0)
    assert images.shape == (3, 32, 32, 1) and list(labels) == [3, 3, 3]
    assert main(["gan", "sample", "--checkpoint", str(tmp_path / "nothing"), "--out", str(grid)]) == 2
    assert main(["gan", "sample", "--checkpoint", shipped_generator_path(0), "--n", "0"]) == 2
    assert main(["gan", "sample", "--checkpoint", shipped_generator_path(0), "--n", "4", "--temperature", "0.5",
                 "--out", str(grid)]) == 0
    assert main(["gan", "sample", "--checkpoint", shipped_generator_path(0), "--temperature", "0",
                 "--out", str(grid)]) == 2


@pytest.mark.slow
def test_cli_train_writes_grids_and_resumes(tmp_path, capsys):
    from kaug.cli import main

    out = str(tmp_path / "run")
    args = ["gan", "train", "--dataset", "digits", "--per-class", "2", "--batch-size", "8", "--steps", "2",
            "--checkpoint-every", "1", "--policy", "translation", "--out", out]
    assert main(args) == 0
    assert "step 2" in capsys.readouterr().out
    assert sorted(os.listdir(os.path.join(out, "samples"))) == ["step-000001.png", "step-000002.png"]
    assert main(args) == 2  # an existing run without --resume
    assert "--resume" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 0  # already complete: loads, nothing to train
    assert "step 2" in capsys.readouterr().out
