"""Sequential: a stack of layers with a loss, trained one C++ call per layer
and direction."""

from .rnn import RNN


class Sequential:
    """`Sequential([RNN(cell), Dense(C)], loss=SequenceLoss())`.

    predict(x) runs inference (no tapes, no dropout); train_step runs
    forward, the loss and its gradient, backward through every layer, and
    one optimizer update, returning the loss before the update."""

    def __init__(self, layers, loss=None):
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("layers must hold at least one layer, got an empty list")
        for i, layer in enumerate(self.layers):
            if not (hasattr(layer, "forward") and hasattr(layer, "backward")):
                raise TypeError(f"layers[{i}] must have forward and backward, got {type(layer).__name__}")
        self.loss = loss

    def predict(self, x, sequence_length=None):
        """Inference: the last layer's output (logits) for x [B, T, D]."""
        for layer in self.layers:
            if isinstance(layer, RNN):
                x, _ = layer(x, sequence_length=sequence_length)
            else:
                x = layer(x)
        return x

    def forward(self, x, sequence_length=None, training=True):
        """Training forward: records what backward needs in every layer."""
        for layer in self.layers:
            if isinstance(layer, RNN):
                x, _ = layer.forward(x, sequence_length=sequence_length, training=training)
            else:
                x = layer.forward(x)
        return x

    def backward(self, d_output, input_grad=True):
        """Backpropagates d_output through every layer; returns d_inputs
        (None with `input_grad=False`, which spares a first recurrent layer
        its input-gradient product; train_step has no use for it)."""
        for i in reversed(range(len(self.layers))):
            layer = self.layers[i]
            if isinstance(layer, RNN):
                d_output = layer.backward(d_output, input_grad=input_grad or i > 0)[0]
            else:
                d_output = layer.backward(d_output)
        return d_output

    def grads_and_vars(self):
        return [pair for layer in self.layers for pair in layer.grads_and_vars()]

    @property
    def variables(self):
        """{layer index: that layer's variables}."""
        return {i: layer.variables for i, layer in enumerate(self.layers)}

    def train_step(self, x, targets, weights, optimizer, sequence_length=None):
        """One update. Returns the loss before the update (a float)."""
        if self.loss is None:
            raise ValueError("train_step needs a loss: Sequential(layers, loss=SequenceLoss())")
        logits = self.forward(x, sequence_length=sequence_length, training=True)
        loss = self.loss.forward(logits, targets, weights)
        self.backward(self.loss.backward(), input_grad=False)
        optimizer.apply_gradients(self.grads_and_vars())
        return float(loss) if getattr(loss, "ndim", 0) == 0 else loss

    def generate(self, prime, length, **options):
        """Token ids [num_samples, length] generated after `prime`, in one C++
        call; options and the exact draw: rnnkit.generate.generate."""
        from .generate import generate
        return generate(self, prime, length, **options)
