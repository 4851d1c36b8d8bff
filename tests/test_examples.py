"""The training examples learn: each, with few steps, beats its baseline."""

from rnnkit.examples import classify, stock, wordlm


def test_stock_beats_tomorrow_equals_today():
    rmse, baseline = stock.train(epochs=10, verbose=0)
    assert rmse < 0.9 * baseline


def test_classify_beats_the_commonest_class():
    accuracy, chance = classify.train(epochs=3, rows=500, verbose=0)
    assert chance < 0.35
    assert accuracy > 0.6


def test_wordlm_beats_the_unigram_model():
    perplexity, unigram = wordlm.train(epochs=1, words=5000, verbose=0)
    assert perplexity < 0.8 * unigram


def test_wordlm_batches_continue_each_row():
    x, y = wordlm.batches(list(range(101)), batch_size=2, steps=5)
    assert x.shape == (20, 5)  # 10 windows of 2 rows
    assert x[0].tolist() == [0, 1, 2, 3, 4] and x[1].tolist() == [50, 51, 52, 53, 54]  # window 0, rows 0 and 1
    assert x[2].tolist() == [5, 6, 7, 8, 9]  # window 1 continues row 0
    assert (y == x + 1).all()
