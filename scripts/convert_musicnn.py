"""Convert musicnn's MSD_musicnn TensorFlow 1 checkpoint into the project's PyTorch port, and verify it.

Run once, in a throw-away venv (TensorFlow is never a dependency of the project)::

    python3.11 -m venv /tmp/convert
    /tmp/convert/bin/pip install tensorflow-cpu tf-keras torch==2.13.0 librosa pandas pyarrow soxr av soundfile
    /tmp/convert/bin/pip install musicnn --no-deps
    /tmp/convert/bin/python scripts/convert_musicnn.py [--clips a.mp3 b.mp3 ...]

It reads the checkpoint that ships inside the musicnn wheel, maps every variable onto
:class:`core.model.musicnn.MusiCNN`, writes ``core/model/weights/msd_musicnn.pt`` (float32 tensors, loadable with
``weights_only=True``), then builds musicnn's own TensorFlow graph (``musicnn.models.define_model``), runs both on
the synthetic :func:`core.model.musicnn.port_check_clip` and on ``--clips`` (3 s patches through musicnn's own front
end), and fails unless every output agrees to 1e-4. The synthetic clip's patches and the original's outputs go
to ``tests/data/musicnn_expected.npz`` for ``tests/test_musicnn.py``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # musicnn's tf.compat.v1.layers need Keras 2 (tf-keras)
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a venv without the project installed

EXPECTED = ROOT / "tests" / "data" / "musicnn_expected.npz"
OUTPUTS = ("taggram", "penultimate", "max_pool", "mean_pool")
TOLERANCE = 1e-4


def checkpoint_dir() -> Path:
    import musicnn

    return Path(musicnn.__file__).parent / "MSD_musicnn"


def state_dict_from_checkpoint(reader) -> dict:
    """Torch tensors named as :class:`core.model.musicnn.MusiCNN`'s, from the TF variables (creation order = suffix)."""
    import torch

    def var(name):
        return torch.from_numpy(np.ascontiguousarray(reader.get_tensor(name), dtype=np.float32))

    out = {}

    def bn(torch_name, tf_index):
        tf_name = "batch_normalization" + (f"_{tf_index}" if tf_index else "")
        out[f"{torch_name}.weight"] = var(f"{tf_name}/gamma")
        out[f"{torch_name}.bias"] = var(f"{tf_name}/beta")
        out[f"{torch_name}.running_mean"] = var(f"{tf_name}/moving_mean")
        out[f"{torch_name}.running_var"] = var(f"{tf_name}/moving_variance")
        out[f"{torch_name}.num_batches_tracked"] = torch.tensor(0)

    def conv(torch_name, tf_index, *, one_d=False):
        tf_name = "conv2d" + (f"_{tf_index}" if tf_index else "")
        kernel = var(f"{tf_name}/kernel")  # (kh, kw, in, out)
        if one_d:  # a [7, C] kernel over a 1-channel (frames, C) map is a 1-D conv with C input channels
            out[f"{torch_name}.weight"] = kernel[:, :, 0, :].permute(2, 1, 0).contiguous()
        else:
            out[f"{torch_name}.weight"] = kernel.permute(3, 2, 0, 1).contiguous()
        out[f"{torch_name}.bias"] = var(f"{tf_name}/bias")

    bn("input_bn", 0)
    for i in range(2):
        conv(f"timbral.{i}", i)
        bn(f"timbral_bn.{i}", 1 + i)
    for i in range(3):
        conv(f"temporal.{i}", 2 + i)
        bn(f"temporal_bn.{i}", 3 + i)
    for i in range(3):
        conv(f"midend.{i}", 5 + i, one_d=True)
        bn(f"midend_bn.{i}", 6 + i)
    bn("pool_bn", 9)
    out["dense.weight"], out["dense.bias"] = var("dense/kernel").T.contiguous(), var("dense/bias")
    bn("dense_bn", 10)
    out["tags.weight"], out["tags.bias"] = var("dense_1/kernel").T.contiguous(), var("dense_1/bias")
    return out


def original_patches(y: np.ndarray) -> np.ndarray:
    """musicnn's own front end (extractor.batch_data) on 16 kHz audio, float16 arithmetic and all."""
    import librosa

    from core.model import musicnn as port

    rep = librosa.feature.melspectrogram(y=y, sr=port.SR, hop_length=port.HOP, n_fft=port.N_FFT, n_mels=port.N_MELS).T
    rep = np.log10(10000 * rep.astype(np.float16) + 1)
    starts = range(0, rep.shape[0] - port.PATCH_FRAMES + 1, port.PATCH_FRAMES)
    return np.stack([rep[s:s + port.PATCH_FRAMES] for s in starts]).astype(np.float32)


class Original:
    """musicnn's TensorFlow graph with the MSD weights, in graph mode as musicnn's extractor runs it."""

    def __init__(self):
        import tensorflow as tf
        from musicnn import models

        tf.compat.v1.disable_eager_execution()
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.x = tf.compat.v1.placeholder(tf.float32, [None, 187, 96])
            self.training = tf.compat.v1.placeholder(tf.bool)
            logits, _, _, _, _, _, mean_pool, max_pool, penultimate = models.define_model(
                self.x, self.training, "MSD_musicnn", 50)
            self.outputs = {"taggram": tf.nn.sigmoid(logits), "penultimate": penultimate, "max_pool": max_pool,
                            "mean_pool": mean_pool}
            self.session = tf.compat.v1.Session(graph=self.graph)
            tf.compat.v1.train.Saver().restore(self.session, str(checkpoint_dir()) + "/")

    def __call__(self, patches: np.ndarray) -> dict:
        return self.session.run(self.outputs, feed_dict={self.x: patches, self.training: False})


def ported(model, patches: np.ndarray) -> dict:
    import torch

    with torch.inference_mode():
        return {k: v.numpy() for k, v in model(torch.from_numpy(patches)).items() if k in OUTPUTS}


def compare(name: str, original: dict, port: dict) -> float:
    """Largest difference relative to each output's scale: |a - b| / max(1, max |a|) (float32 convolutions in
    another order differ by about 1e-7 of the values they add up)."""
    parts = {k: float(np.max(np.abs(original[k] - port[k])) / max(1.0, np.max(np.abs(original[k])))) for k in OUTPUTS}
    print(f"{name}: " + ", ".join(f"{k} {v:.1e}" for k, v in parts.items()))
    return max(parts.values())


def main(argv=None) -> int:
    import tensorflow as tf
    import torch

    from core.audio.decode import load_audio
    from core.model import musicnn as port

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="*", default=[], help="audio files to check the port on as well")
    args = parser.parse_args(argv)

    reader = tf.compat.v1.train.NewCheckpointReader(str(checkpoint_dir()) + "/")
    model = port.MusiCNN()
    model.load_state_dict(state_dict_from_checkpoint(reader))
    model.eval()
    port.WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": 1, "model_args": {}, "state_dict": model.state_dict(),
                "source": "musicnn 0.1.0 (ISC licence, MTG-UPF), MSD_musicnn checkpoint, converted by "
                          "scripts/convert_musicnn.py"}, port.WEIGHTS)
    model = port.load_musicnn()  # check what was written, not what is in memory
    print(f"wrote {port.WEIGHTS.relative_to(ROOT)} ({os.path.getsize(port.WEIGHTS) / 1e6:.1f} MB, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters)")

    original = Original()
    # the networks are compared on the port's (float32) front end: the original's float16 one overflows on most
    # real music; where it stays finite, the two front ends differ only by float16 rounding (reported below)
    clip = port.port_check_clip()
    patches = port.patches(port.musicnn_input(clip))
    expected = original(patches)
    worst = [compare("synthetic clip", expected, ported(model, patches))]
    np.savez_compressed(EXPECTED, patches=patches, **{k: expected[k] for k in OUTPUTS})
    print(f"wrote {EXPECTED.relative_to(ROOT)}")
    quiet = clip * 0.01
    raw, ours = original_patches(quiet), port.patches(port.musicnn_input(quiet))
    print(f"front ends on the clip at -40 dB (where the original's is finite): largest input difference "
          f"{np.max(np.abs(raw - ours)):.1e}; the original network on both inputs:")
    compare("  float16 vs float32 front end", original(raw), original(ours))
    for path in args.clips:
        y = load_audio(path, sr=port.SR)
        p = port.patches(port.musicnn_input(y), max_patches=4)
        worst.append(compare(Path(path).name, original(p), ported(model, p)))
        finite = np.isfinite(original_patches(y)).all(axis=(1, 2)).mean()
        print(f"  musicnn's own float16 front end gives finite patches for {finite:.0%} of it")
    if max(worst) > TOLERANCE:
        print(f"FAILED: the port differs from the original by more than {TOLERANCE}")
        return 1
    print(f"the port equals the original to {TOLERANCE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
