"""Sequential.fit / evaluate, History, callbacks and the progress output."""

import io
import sys

import numpy as np
import pytest

import rnnkit
from helpers import rng

N, T, D, H, C = 10, 5, 3, 6, 4


def data(rows=N, seed=0):
    ids = rng(seed).integers(0, C, size=(rows, T + 1))
    x = np.eye(D + 1, dtype=np.float32)[ids[:, :-1]][..., :D]  # id D is the zero vector
    return x, ids[:, :-1], rng(seed + 1).uniform(0.5, 1.5, size=(rows, T)).astype(np.float32)


def model(seed=0, stateful=False):
    return rnnkit.Sequential([rnnkit.RNN(rnnkit.BasicLSTMCell(H, seed=seed)), rnnkit.Dense(C, seed=seed + 1)],
                             loss=rnnkit.SequenceLoss(), stateful=stateful)


def weights_of(m):
    return m.get_weights()


def record_steps():
    steps = []
    return steps, rnnkit.LambdaCallback(on_step_end=lambda step, logs: steps.append((step, logs["loss"],
                                                                                      logs["batch_size"])))


def test_epoch_loss_is_the_batch_size_weighted_mean_and_the_last_batch_is_used():
    x, y, w = data()
    steps, cb = record_steps()
    history = model().fit(x, y, w, optimizer=rnnkit.AdamOptimizer(0.05), epochs=2, batch_size=4, verbose=0,
                          callbacks=[cb])
    assert history.epoch == [0, 1]
    assert [s[2] for s in steps] == [4, 4, 2, 4, 4, 2]
    assert [s[0] for s in steps] == [0, 1, 2, 0, 1, 2]
    for epoch in range(2):
        losses = steps[3 * epoch: 3 * epoch + 3]
        mean = sum(loss * size for _, loss, size in losses) / N
        assert history.history["loss"][epoch] == pytest.approx(mean, rel=1e-12)
    assert set(history.history) == {"loss"}


def test_fit_equals_train_step_over_the_seeded_order():
    x, y, w = data()
    a, b = model(), model()
    opt_a, opt_b = rnnkit.AdamOptimizer(0.05), rnnkit.AdamOptimizer(0.05)
    a.fit(x, y, w, optimizer=opt_a, epochs=2, batch_size=3, seed=7, verbose=0, clip_norm=0.5)
    order = np.random.default_rng(7)
    for _ in range(2):
        perm = order.permutation(N)
        for start in range(0, N, 3):
            i = perm[start:start + 3]
            b.train_step(x[i], y[i], w[i], opt_b, clip_norm=0.5)
    for va, vb in zip(weights_of(a), weights_of(b)):
        np.testing.assert_array_equal(va, vb)


def test_shuffle_false_takes_rows_in_order():
    x, y, w = data()
    a, b = model(), model()
    opt_a, opt_b = rnnkit.GradientDescentOptimizer(0.5), rnnkit.GradientDescentOptimizer(0.5)
    a.fit(x, y, w, optimizer=opt_a, batch_size=4, shuffle=False, verbose=0)
    for start in range(0, N, 4):
        b.train_step(x[start:start + 4], y[start:start + 4], w[start:start + 4], opt_b)
    for va, vb in zip(weights_of(a), weights_of(b)):
        np.testing.assert_array_equal(va, vb)


def test_validation_split_takes_the_last_rows_and_accuracy_is_weighted():
    x, y, w = data(rows=12)
    m = model()
    seen = []

    def check(epoch, logs):  # at each epoch's end, with that epoch's weights
        seen.append(m.evaluate(x[9:], y[9:], w[9:], batch_size=2, metrics=("accuracy",)))
        logits = m.predict(x[9:])
        correct = (np.argmax(logits, -1) == y[9:]) * w[9:].astype(np.float64)
        assert logs["val_accuracy"] == pytest.approx(correct.sum() / w[9:].sum(dtype=np.float64), rel=1e-12)

    steps, rec = record_steps()
    history = m.fit(x, y, w, optimizer=rnnkit.AdamOptimizer(0.05), epochs=3, batch_size=2, validation_split=0.25,
                    verbose=0, metrics=["accuracy"], callbacks=[rec, rnnkit.LambdaCallback(on_epoch_end=check)])
    assert [s[2] for s in steps[:5]] == [2, 2, 2, 2, 1]  # 9 training rows
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history.history["val_loss"] == pytest.approx([s["loss"] for s in seen], rel=1e-12)
    assert all(0 <= a <= 1 for a in history.history["accuracy"])


def test_fit_learns_and_evaluate_agrees():
    x, y, w = data(rows=16)
    m = model()
    history = m.fit(x, y, optimizer=rnnkit.AdamOptimizer(0.05), epochs=30, batch_size=8, seed=0, verbose=0,
                    validation_data=(x, y))
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    loss = m.evaluate(x, y, batch_size=16)
    assert loss == pytest.approx(float(rnnkit.sequence_loss(m.predict(x), y, np.ones(y.shape))), rel=1e-6)
    assert m.evaluate(x, y, batch_size=8) == history.history["val_loss"][-1]  # fit's batches


def test_stateful_fit_runs_batches_in_order_from_zeros_each_epoch():
    x, y, w = data(rows=8)
    a, b = model(stateful=True), model()
    opt_a, opt_b = rnnkit.AdamOptimizer(0.05), rnnkit.AdamOptimizer(0.05)
    a.fit(x, y, w, optimizer=opt_a, epochs=2, batch_size=4, verbose=0)  # shuffle is ignored
    for _ in range(2):
        state = None
        for start in (0, 4):
            b.train_step(x[start:start + 4], y[start:start + 4], w[start:start + 4], opt_b,
                         initial_state=None if state is None else state)
            state = b.final_state
    for va, vb in zip(weights_of(a), weights_of(b)):
        np.testing.assert_array_equal(va, vb)
    with pytest.raises(ValueError, match="stateful model needs batches of one size: x has 8 rows, not a multiple "
                                         "of batch_size 3"):
        a.fit(x, y, optimizer=opt_a, batch_size=3, verbose=0)


def test_fit_argument_errors():
    x, y, w = data()
    m, opt = model(), rnnkit.AdamOptimizer()
    with pytest.raises(ValueError, match=r"y must have 10 rows \(x's\), got shape \[9, 5\]"):
        m.fit(x, y[:9], optimizer=opt, verbose=0)
    with pytest.raises(ValueError, match=r"validation weights must have 2 rows"):
        m.fit(x, y, optimizer=opt, verbose=0, validation_data=(x[:2], y[:2], w[:3]))
    with pytest.raises(ValueError, match="validation_split must be a number in"):
        m.fit(x, y, optimizer=opt, verbose=0, validation_split=1.0)
    with pytest.raises(ValueError, match="metrics must hold names from"):
        m.fit(x, y, optimizer=opt, verbose=0, metrics=["precision"])
    with pytest.raises(ValueError, match="verbose must be 0, 1, 2 or 'auto'"):
        m.fit(x, y, optimizer=opt, verbose=3)
    with pytest.raises(TypeError, match="optimizer must be an rnnkit optimizer .* got str"):
        m.fit(x, y, optimizer="adam", verbose=0)
    with pytest.raises(ValueError, match="batch_size must be an int > 0"):
        m.fit(x, y, optimizer=opt, verbose=0, batch_size=0)
    with pytest.raises(TypeError, match="callbacks must hold rnnkit.Callback objects"):
        m.fit(x, y, optimizer=opt, verbose=0, callbacks=[print])
    flagged = rnnkit.Sequential(m.layers, loss=rnnkit.SequenceLoss(average_across_batch=False))
    with pytest.raises(ValueError, match=r"need a scalar loss, got one of shape \[10\]"):
        flagged.fit(x, y, optimizer=opt, verbose=0)


# ---- output ------------------------------------------------------------------------------------------
class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_verbose_output(monkeypatch, capsys):
    x, y, w = data()
    model().fit(x, y, optimizer=rnnkit.AdamOptimizer(), epochs=2, batch_size=4, verbose=0)
    assert capsys.readouterr().out == ""
    model().fit(x, y, optimizer=rnnkit.AdamOptimizer(), epochs=2, batch_size=4, validation_split=0.2)
    lines = capsys.readouterr().out.splitlines()  # "auto" off a terminal: one line per epoch
    assert len(lines) == 2 and lines[0].startswith("Epoch 1/2 - 2/2 - ") and lines[1].startswith("Epoch 2/2")
    assert " - loss: " in lines[0] and " - val_loss: " in lines[0] and "ms/step" in lines[0]
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    model().fit(x, y, optimizer=rnnkit.AdamOptimizer(), epochs=1, batch_size=4, verbose=1, metrics=["accuracy"])
    text = terminal.getvalue()
    assert text.startswith("Epoch 1/1\n\r")
    assert "[==============================]" in text and " - accuracy: " in text and text.endswith("\n")
    assert "\r1/3 [==========>...................] - ETA: " in text  # the first step is always drawn
    assert "steps/s" in text or "s/step" in text
    terminal2 = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal2)
    model().fit(x, y, optimizer=rnnkit.AdamOptimizer(), epochs=2, batch_size=4, verbose=2)
    assert "\r" not in terminal2.getvalue() and len(terminal2.getvalue().splitlines()) == 2


# ---- callbacks ---------------------------------------------------------------------------------------
def test_early_stopping_stops_and_restores_the_best_weights():
    x, y, w = data()
    m = model()
    snapshots = []
    keep = rnnkit.LambdaCallback(on_epoch_end=lambda epoch, logs: snapshots.append(m.get_weights()))
    stop = rnnkit.EarlyStopping(monitor="loss", patience=1, min_delta=1e9)  # nothing counts as improving after epoch 0
    history = m.fit(x, y, optimizer=rnnkit.AdamOptimizer(0.05), epochs=10, verbose=0, callbacks=[keep, stop])
    assert history.epoch == [0, 1] and stop.stopped_epoch == 1 and stop.best_epoch == 0
    for now, best in zip(m.get_weights(), snapshots[0]):
        np.testing.assert_array_equal(now, best)
    assert not all(np.array_equal(a, b) for a, b in zip(snapshots[0], snapshots[1]))


def test_early_stopping_rule_by_hand():
    m = model()
    m.predict(data()[0])
    stop = rnnkit.EarlyStopping(monitor="val_accuracy", patience=2, restore_best=False)
    stop.set_model(m)
    stop.on_train_begin()
    for epoch, value in enumerate([0.5, 0.6, 0.6, 0.55]):  # accuracy grows: 0.6 is best at epoch 1
        stop.on_epoch_end(epoch, {"val_accuracy": value})
        assert m.stop_training == (epoch == 3)
    assert stop.best == 0.6 and stop.best_epoch == 1
    with pytest.raises(ValueError, match="EarlyStopping monitors 'val_loss', which fit does not log \\(it logs: loss\\)"):
        m.fit(*data()[:2], optimizer=rnnkit.AdamOptimizer(), verbose=0, callbacks=[rnnkit.EarlyStopping()])


def test_model_checkpoint_every_steps_and_best_only(tmp_path):
    x, y, w = data()
    m, opt = model(), rnnkit.AdamOptimizer(0.05)
    every = rnnkit.ModelCheckpoint(str(tmp_path / "step-{step}"), every_steps=2)
    best = rnnkit.ModelCheckpoint(str(tmp_path / "best-{epoch:02d}-{loss:.3f}.npz"), save_best_only=True,
                                  monitor="loss")
    history = m.fit(x, y, optimizer=opt, epochs=3, batch_size=4, verbose=0, callbacks=[every, best])
    assert [p.rsplit("/", 1)[1] for p in every.saved] == ["step-2.npz", "step-4.npz", "step-6.npz", "step-8.npz"]
    losses = history.history["loss"]
    improved = [e for e in range(3) if all(losses[e] < losses[k] for k in range(e))]
    assert [p.rsplit("/", 1)[1] for p in best.saved] == [f"best-{e + 1:02d}-{losses[e]:.3f}.npz" for e in improved]
    fresh, fresh_opt = model(seed=5), rnnkit.AdamOptimizer(0.05)
    rnnkit.load(best.saved[-1], fresh, optimizer=fresh_opt)  # the model and Adam's state
    assert fresh_opt.iterations == 3 * (improved[-1] + 1)
    with pytest.raises(ValueError, match="choose one"):
        rnnkit.ModelCheckpoint("x", every_steps=2, save_best_only=True)
    bad = rnnkit.ModelCheckpoint(str(tmp_path / "{val_loss}"), every_steps=1)
    with pytest.raises(ValueError, match=r"names 'val_loss', which is not among the fields here \(epoch, step, loss"):
        m.fit(x, y, optimizer=opt, verbose=0, callbacks=[bad])


def test_callback_hooks_run_in_keras_order():
    x, y, _ = data()
    calls = []
    hooks = {name: (lambda name: lambda *args: calls.append(name))(name) for name in rnnkit.LambdaCallback._HOOKS}
    model().fit(x, y, optimizer=rnnkit.AdamOptimizer(), epochs=1, batch_size=5, verbose=0,
                callbacks=[rnnkit.LambdaCallback(**hooks)])
    assert calls == ["on_train_begin", "on_epoch_begin", "on_step_begin", "on_step_end", "on_step_begin",
                     "on_step_end", "on_epoch_end", "on_train_end"]
    with pytest.raises(TypeError, match="LambdaCallback takes the hooks"):
        rnnkit.LambdaCallback(on_batch_end=print)


def test_history_plot_writes_a_png(tmp_path):
    matplotlib = pytest.importorskip("matplotlib", reason="History.plot needs matplotlib (pip install rnnkit[plot])")
    matplotlib.use("Agg")
    x, y, _ = data()
    history = model().fit(x, y, optimizer=rnnkit.AdamOptimizer(), epochs=2, verbose=0, validation_split=0.2,
                          metrics=["accuracy"])
    path = tmp_path / "loss.png"
    history.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    figure = history.plot()
    assert len(figure.axes) == 2  # loss and accuracy
    matplotlib.pyplot.close(figure)


def test_history_plot_names_the_extra_when_matplotlib_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    history = rnnkit.History()
    history.on_epoch_end(0, {"loss": 1.0})
    with pytest.raises(ImportError, match=r"pip install rnnkit\[plot\]"):
        history.plot()


def test_progress_speed_in_units_leaves_out_resumed_steps():
    from rnnkit.progress import Progress
    now = [0.0]
    out = Terminal()
    bar = Progress(1, 0, 1, 10, out, clock=lambda: now[0], first_step=4, unit=("chars", 1600))
    now[0] = 2.0
    bar.update(6, {"loss": 1.0})  # two steps of this run in 2 s; four were done before the resume
    assert "1,600 chars/s" in out.getvalue() and "ETA: 4.0s" in out.getvalue()
    now[0] = 6.0
    bar.update(10, {"loss": 1.0})
    bar.end({"loss": 1.0})
    assert out.getvalue().rstrip("\n").endswith("6.0s 1000ms/step - 1,600 chars/s - loss: 1.0000")
