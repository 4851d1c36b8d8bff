"""What charrnn takes from rnnkit's training API (fit's progress bar,
train_step's clip_norm, checkpoints with the optimizer's state), with a
minimal stand-in where this rnnkit does not have it yet."""

import inspect
import sys

import rnnkit

try:
    from ..progress import Progress
except ImportError:  # rnnkit without fit's progress bar: one line per epoch
    class Progress:
        def __init__(self, mode, epoch, epochs, steps, stream):
            self.title, self.stream = f"Epoch {epoch + 1}/{epochs}", stream

        def update(self, step, logs):
            pass

        def end(self, logs):
            text = "".join(f" - {k}: {float(v):.4f}" for k, v in logs.items())
            self.stream.write(self.title + text + "\n")
            self.stream.flush()

_CLIPS = "clip_norm" in inspect.signature(rnnkit.Sequential.train_step).parameters


def train_step(model, x, y, weights, optimizer, clip_norm):
    """model.train_step with gradients clipped to `clip_norm` (global norm)."""
    if _CLIPS:
        return model.train_step(x, y, weights, optimizer, clip_norm=clip_norm)
    loss = model.loss.forward(model.forward(x), y, weights)
    model.backward(model.loss.backward(), input_grad=False)
    pairs = model.grads_and_vars()
    clipped, _ = rnnkit.clip_by_global_norm([g for g, _ in pairs], clip_norm)
    optimizer.apply_gradients(list(zip(clipped, [v for _, v in pairs])))
    return float(loss)


class save_with_optimizer:
    """rnnkit.save / rnnkit.load with the optimizer's state where rnnkit
    supports it (`optimizer=`); otherwise the weights alone, and resuming
    restarts Adam's moments."""

    supported = "optimizer" in inspect.signature(rnnkit.save).parameters

    @classmethod
    def save(cls, path, model, optimizer):
        if cls.supported:
            rnnkit.save(path, model, optimizer=optimizer)
        else:
            rnnkit.save(path, model)

    @classmethod
    def load(cls, path, model, optimizer):
        if cls.supported:
            rnnkit.load(path, model, optimizer=optimizer)
        else:
            print("charrnn: this rnnkit saves no optimizer state: Adam restarts from zero moments",
                  file=sys.stderr)
            rnnkit.load(path, model)
