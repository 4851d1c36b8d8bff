// TF1's tf.contrib.rnn.LayerNormBasicLSTMCell over a whole sequence: an LSTM
// whose four gate pre-activations and new cell state are each layer-normalised
// over their H units (Ba, Kiros and Hinton, arXiv:1607.06450), with optional
// dropout on the candidate g (Semeniuta et al., arXiv:1603.05118).
//
// Per step (TF1's contrib/rnn/python/ops/rnn_cell.py and
// tf.contrib.layers.layer_norm, variance_epsilon = 1e-12):
//   z = [x, h_prev] · kernel  (+ bias only without layer norm)  -> i, j, f, o
//   LN_q(v) = (v - mean(v)) / sqrt(var(v) + 1e-12) ⊙ gamma_q + beta_q
//             (mean and the biased variance over the row's H units)
//   i, j, f, o = LN_input(i), LN_transform(j), LN_forget(f), LN_output(o)
//   g = act(j) ⊙ dropout_mask                (mask: 0 or 1/keep_prob; none: 1)
//   c = σ(f + forget_bias) ⊙ c_prev + σ(i) ⊙ g;   c = LN_state(c)
//   h = act(c) ⊙ σ(o)
// Without layer norm every LN_q is the identity and the cell is BasicLSTMCell.
//
// The forward fills a LayerNormLstmTape (normalised values and 1/std of each
// layer norm per row); backward consumes it, overwriting the gate buffer in
// place with the gradients of the products z.
#pragma once

#include "rnnkit/inputs.hpp"
#include "rnnkit/rowmath.hpp"

namespace rnnkit {

// tf.contrib.layers.layer_norm's variance_epsilon.
constexpr double kLayerNormEpsilon = 1e-12;

// The five layer norms, in TF's creation order of their variables; gate q's
// units are columns [qH, (q + 1)H) of z.
enum LayerNormSlot : int { kNormInput = 0, kNormTransform = 1, kNormForget = 2, kNormOutput = 3, kNormState = 4 };
constexpr int kLayerNorms = 5;

struct LayerNormLstmConfig {
  Index D = 0, H = 0;
  double forget_bias = 1.0;
  bool layer_norm = true;
  Activation activation = Activation::Tanh;

  Index G() const { return 4 * H; }
};

template <typename T>
struct LayerNormLstmWeights {
  const T* kernel = nullptr;                // [D + H, 4H]: rows [0, D) act on x, [D, D + H) on h_prev
  const T* bias = nullptr;                  // [4H] (layer_norm = false only)
  const T* gamma[kLayerNorms] = {};         // [H] each (layer_norm only)
  const T* beta[kLayerNorms] = {};          // [H] each (layer_norm only)
};

template <typename T>
struct LayerNormLstmGrads {
  T* kernel = nullptr;
  T* bias = nullptr;
  T* gamma[kLayerNorms] = {};
  T* beta[kLayerNorms] = {};
};

// What backward needs, all [rows, *] in the sequence's own order, owned by
// the caller. gates, norm and rstd are always given (scratch for an
// inference forward); c and h_prev only when training.
template <typename T>
struct LayerNormLstmTape {
  T* gates = nullptr;   // [rows, 4H] σ(i), act(j) (before dropout), σ(f), σ(o); backward: d z
  T* norm = nullptr;    // [rows, 5H] each layer norm's (v - mean) / std, in slot order (layer_norm only)
  T* rstd = nullptr;    // [rows, 5]  each layer norm's 1 / sqrt(var + eps) (layer_norm only)
  T* c = nullptr;       // [rows, H]  cell state after step t (carried on padded steps)
  T* h_prev = nullptr;  // [rows, H]  recurrent input of step t
};

namespace detail {

// y = (x - mean) / sqrt(var + eps) over x [n]; returns 1 / sqrt(var + eps).
// Sums run chunk by chunk in a fixed order, so a row gives the same bits
// wherever it lives; the zero padding of a last short chunk is kept out of
// the variance.
template <typename T>
T layer_normalize(const T* x, Index n, T* y) {
  Chunk<T> sum = Chunk<T>::Zero();
  for (Index k0 = 0; k0 < n; k0 += kChunk<T>) sum += RowChunk<T>(k0, n).load(x);
  const T mean = sum.sum() / T(n);
  Chunk<T> squares = Chunk<T>::Zero();
  for (Index k0 = 0; k0 < n; k0 += kChunk<T>) {
    const RowChunk<T> at(k0, n);
    Chunk<T> d = at.load(x) - mean;
    if (at.n < kChunk<T>) d.tail(kChunk<T> - at.n).setZero();
    squares += d * d;
  }
  const T rstd = T(1) / std::sqrt(squares.sum() / T(n) + T(kLayerNormEpsilon));
  for (Index k0 = 0; k0 < n; k0 += kChunk<T>) {
    const RowChunk<T> at(k0, n);
    at.store((at.load(x) - mean) * rstd, y);
  }
  return rstd;
}

// out = y ⊙ gamma + beta over [n].
template <typename T>
void gain_and_shift(const T* y, const T* gamma, const T* beta, Index n, T* out) {
  for (Index k0 = 0; k0 < n; k0 += kChunk<T>) {
    const RowChunk<T> at(k0, n);
    at.store(at.load(y) * at.load(gamma) + at.load(beta), out);
  }
}

// The gradient through out = y ⊙ gamma + beta, y = (x - mean) · rstd:
// dx = rstd · (dy' - mean(dy') - y ⊙ mean(dy' ⊙ y)), dy' = d_out ⊙ gamma.
template <typename T>
void layer_norm_grad(const T* d_out, const T* y, const T* gamma, T rstd, Index n, T* dx) {
  Chunk<T> sum = Chunk<T>::Zero(), sum_y = Chunk<T>::Zero();
  for (Index k0 = 0; k0 < n; k0 += kChunk<T>) {
    const RowChunk<T> at(k0, n);
    const Chunk<T> dy = at.load(d_out) * at.load(gamma);  // zero in the padding
    sum += dy;
    sum_y += dy * at.load(y);
  }
  const T mean_dy = sum.sum() / T(n), mean_dy_y = sum_y.sum() / T(n);
  for (Index k0 = 0; k0 < n; k0 += kChunk<T>) {
    const RowChunk<T> at(k0, n);
    const Chunk<T> dy = at.load(d_out) * at.load(gamma);
    at.store(rstd * (dy - mean_dy - at.load(y) * mean_dy_y), dx);
  }
}

// One row of a step. z: [4H] the products [x, h_prev] · kernel (+ bias) in,
// σ(i), act(j), σ(f), σ(o) out; c: [H] c_prev in, c out; h: [H] out;
// norm: [5H], rstd: [5] out (layer_norm only); g_mask: [H] or null.
// One compiled body (noinline) serves every caller, so all round alike.
template <typename T>
[[gnu::noinline]] void layer_norm_lstm_row_forward(const LayerNormLstmConfig& cfg, const LayerNormLstmWeights<T>& w,
                                                   T* z, T* c, T* h, T* norm, T* rstd, const T* g_mask) {
  const Index H = cfg.H;
  const Activation act = cfg.activation;
  const T forget_bias = T(cfg.forget_bias);
  if (cfg.layer_norm)
    for (int q = kNormInput; q <= kNormOutput; ++q) {
      rstd[q] = layer_normalize(z + q * H, H, norm + q * H);
      gain_and_shift(norm + q * H, w.gamma[q], w.beta[q], H, z + q * H);
    }
  for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
    const RowChunk<T> at(k0, H);
    Chunk<T> i = at.load(z), j = at.load(z + H), f = at.load(z + 2 * H), o = at.load(z + 3 * H);
    i = i.logistic();
    activate_inplace(j, act);
    f = (f + forget_bias).logistic();
    o = o.logistic();
    const Chunk<T> g = g_mask ? Chunk<T>(j * at.load(g_mask)) : j;
    at.store(f * at.load(c) + i * g, c);
    at.store(i, z);
    at.store(j, z + H);
    at.store(f, z + 2 * H);
    at.store(o, z + 3 * H);
  }
  if (cfg.layer_norm) {
    rstd[kNormState] = layer_normalize(c, H, norm + kNormState * H);
    gain_and_shift(norm + kNormState * H, w.gamma[kNormState], w.beta[kNormState], H, c);
  }
  for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
    const RowChunk<T> at(k0, H);
    Chunk<T> ac = at.load(c);
    activate_inplace(ac, act);
    at.store(ac * at.load(z + 3 * H), h);
  }
}

// One row of the backward step. z: [4H] forward's activated gates in, d z
// out; c, c_prev: [H] from the tape; norm, rstd: forward's (layer_norm
// only); dh: [H] d h (state and output); dc: [H] d c in, d c_prev out;
// d_norm: [5H] out, the gradient of each layer norm's output (layer_norm
// only), from which the gains' and shifts' gradients are summed.
template <typename T>
[[gnu::noinline]] void layer_norm_lstm_row_backward(const LayerNormLstmConfig& cfg, const LayerNormLstmWeights<T>& w,
                                                    T* z, const T* c, const T* c_prev, const T* norm, const T* rstd,
                                                    const T* g_mask, const T* dh, T* dc, T* d_norm) {
  const Index H = cfg.H;
  const Activation act = cfg.activation;
  // through h = act(c) ⊙ σ(o): d c (after the state's layer norm) and d o
  T* d_c_out = cfg.layer_norm ? d_norm + kNormState * H : dc;
  for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
    const RowChunk<T> at(k0, H);
    const Chunk<T> o = at.load(z + 3 * H), d_h = at.load(dh);
    Chunk<T> ac = at.load(c), grad;
    activate_inplace(ac, act);
    activation_grad(grad, ac, act);
    at.store(at.load(dc) + d_h * o * grad, d_c_out);
    at.store(d_h * ac * o * (T(1) - o), z + 3 * H);
  }
  if (cfg.layer_norm)
    layer_norm_grad(d_c_out, norm + kNormState * H, w.gamma[kNormState], rstd[kNormState], H, dc);
  // through c = σ(f) ⊙ c_prev + σ(i) ⊙ act(j) ⊙ mask
  for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
    const RowChunk<T> at(k0, H);
    const Chunk<T> i = at.load(z), j = at.load(z + H), f = at.load(z + 2 * H), d_c = at.load(dc);
    Chunk<T> d_g = d_c * i, g = j, grad;
    if (g_mask) {
      const Chunk<T> mask = at.load(g_mask);
      g *= mask;
      d_g *= mask;
    }
    activation_grad(grad, j, act);
    at.store(d_c * g * i * (T(1) - i), z);
    at.store(d_g * grad, z + H);
    at.store(d_c * at.load(c_prev) * f * (T(1) - f), z + 2 * H);
    at.store(d_c * f, dc);
  }
  if (cfg.layer_norm)
    for (int q = kNormInput; q <= kNormOutput; ++q) {
      std::copy(z + q * H, z + (q + 1) * H, d_norm + q * H);
      layer_norm_grad(d_norm + q * H, norm + q * H, w.gamma[q], rstd[q], H, z + q * H);
    }
}

}  // namespace detail

// in: x [rows, D] or ids [rows]; sequence_length: [B] or null; state_mask:
// DropoutWrapper's mask on h; g_mask: [rows, H] dropout mask on g, or null;
// c0, h0: [B, H] -> outputs: [rows, H] (zero on padded steps); c_final,
// h_final: [B, H]. The tape's gates, norm and rstd are scratch when its c
// is null (inference).
template <typename T>
void layer_norm_lstm_forward(const LayerNormLstmConfig& cfg, const LayerNormLstmWeights<T>& w, const SeqLayout& seq,
                             const SeqInput<T>& in, const int32_t* sequence_length, const StateMask<T>& state_mask,
                             const T* g_mask, const T* c0, const T* h0, T* outputs, T* c_final, T* h_final,
                             const LayerNormLstmTape<T>& tape) {
  const Index D = cfg.D, H = cfg.H, G = cfg.G(), B = seq.B, N = kLayerNorms * H;
  const bool training = tape.c != nullptr;
  CMatMap<T> kernel(w.kernel, D + H, G);
  const RowVec<T> bias = w.bias ? RowVec<T>(CRowMap<T>(w.bias, G)) : RowVec<T>(RowVec<T>::Zero(G));
  project_inputs(MatMap<T>(tape.gates, seq.rows(), G), in, seq.rows(), kernel.topRows(D), bias);
  MatMap<T> c_cur(c_final, B, H), h_cur(h_final, B, H);
  c_cur = CMatMap<T>(c0, B, H);
  h_cur = CMatMap<T>(h0, B, H);
  const PackedRhs<T> W_h(kernel.bottomRows(H), seq.rows());  // packed once, used at every step
  for (Index t = 0; t < seq.T; ++t) {
    auto z = seq.step(tape.gates, t, G);
    auto out = seq.step(outputs, t, H);
    gemm(z, h_cur, W_h, /*accumulate=*/true);
    parallel_for(B, worth_parallel(B, G), [&](Index b) {
      const Index r = seq.row(t, b);
      if (training) seq.step(tape.h_prev, t, H).row(b) = h_cur.row(b);
      T* norm = cfg.layer_norm ? tape.norm + r * N : nullptr;
      T* rstd = cfg.layer_norm ? tape.rstd + r * kLayerNorms : nullptr;
      if (!active(sequence_length, t, b)) {
        out.row(b).setZero();
        if (cfg.layer_norm) {  // read by backward's sums, where its gradient is zero
          std::fill(norm, norm + N, T(0));
          std::fill(rstd, rstd + kLayerNorms, T(0));
        }
      } else {
        detail::layer_norm_lstm_row_forward(cfg, w, &z(b, 0), &c_cur(b, 0), &out(b, 0), norm, rstd,
                                            g_mask ? g_mask + r * H : nullptr);
        if (state_mask.data)
          h_cur.row(b) = out.row(b).cwiseProduct(CRowMap<T>(state_mask.row(seq, t, b, H), H));
        else
          h_cur.row(b) = out.row(b);
      }
      if (training) seq.step(tape.c, t, H).row(b) = c_cur.row(b);
    });
  }
}

// d_outputs: [rows, H]; dc_final, dh_final: [B, H] -> dx: [rows, D] (may be
// null); dc0, dh0: [B, H]; grads. in, the masks, c0 and the weights are
// those given to forward; d_norm: [rows, 5H] scratch (layer_norm only).
template <typename T>
void layer_norm_lstm_backward(const LayerNormLstmConfig& cfg, const LayerNormLstmWeights<T>& w, const SeqLayout& seq,
                              const SeqInput<T>& in, const int32_t* sequence_length, const StateMask<T>& state_mask,
                              const T* g_mask, const T* c0, const LayerNormLstmTape<T>& tape, const T* d_outputs,
                              const T* dc_final, const T* dh_final, T* dx, T* dc0, T* dh0,
                              const LayerNormLstmGrads<T>& grads, T* d_norm) {
  const Index D = cfg.D, H = cfg.H, G = cfg.G(), B = seq.B, N = kLayerNorms * H, rows = seq.rows();
  CMatMap<T> kernel(w.kernel, D + H, G);
  const PackedRhs<T> W_h_t(kernel.bottomRows(H).transpose(), rows);
  MatMap<T> dc(dc0, B, H), dh(dh0, B, H);
  dc = CMatMap<T>(dc_final, B, H);
  dh = CMatMap<T>(dh_final, B, H);
  Mat<T> dh_step(B, H);  // d h of this step: through the state mask, plus the output's
  Mat<T> dh_rec(B, H);   // d h_prev from this step's gates
  for (Index t = seq.T - 1; t >= 0; --t) {
    auto dz = seq.step(tape.gates, t, G);  // gate values in, d z out
    CStepMap<T> d_out = seq.step(d_outputs, t, H);
    parallel_for(B, worth_parallel(B, G), [&](Index b) {
      const Index r = seq.row(t, b);
      T* zb = &dz(b, 0);
      T* d_norm_row = cfg.layer_norm ? d_norm + r * N : nullptr;
      if (!active(sequence_length, t, b)) {  // the state passes through: its gradients too
        std::fill(zb, zb + G, T(0));
        if (cfg.layer_norm) std::fill(d_norm_row, d_norm_row + N, T(0));
        return;
      }
      if (state_mask.data)
        dh_step.row(b) = dh.row(b).cwiseProduct(CRowMap<T>(state_mask.row(seq, t, b, H), H)) + d_out.row(b);
      else
        dh_step.row(b) = dh.row(b) + d_out.row(b);
      const T* c_prev = t == 0 ? c0 + b * H : tape.c + seq.row(t - 1, b) * H;
      detail::layer_norm_lstm_row_backward(cfg, w, zb, tape.c + r * H, c_prev,
                                           cfg.layer_norm ? tape.norm + r * N : nullptr,
                                           cfg.layer_norm ? tape.rstd + r * kLayerNorms : nullptr,
                                           g_mask ? g_mask + r * H : nullptr, &dh_step(b, 0), &dc(b, 0), d_norm_row);
    });
    gemm(dh_rec, dz, W_h_t);
    for (Index b = 0; b < B; ++b)
      if (active(sequence_length, t, b)) dh.row(b) = dh_rec.row(b);
  }

  CMatMap<T> d_gates(tape.gates, rows, G);
  kernel_grad(MatMap<T>(grads.kernel, D + H, G), in, rows, tape.h_prev, d_gates, grads.bias);
  input_grad(dx, in, rows, d_gates, kernel.topRows(D));
  if (!cfg.layer_norm) return;
  // gain: Σ d_out ⊙ normalised, shift: Σ d_out, over all rows in order;
  // threads split the 5H columns.
  constexpr Index kColumns = 64;
  parallel_for((N + kColumns - 1) / kColumns, worth_parallel(rows, N), [&](Index block) {
    const Index k_begin = block * kColumns, k_end = std::min(N, k_begin + kColumns);
    T d_gamma[kColumns] = {}, d_beta[kColumns] = {};
    for (Index r = 0; r < rows; ++r) {
      const T* dn = d_norm + r * N;
      const T* y = tape.norm + r * N;
      for (Index k = k_begin; k < k_end; ++k) {
        d_gamma[k - k_begin] += dn[k] * y[k];
        d_beta[k - k_begin] += dn[k];
      }
    }
    for (Index k = k_begin; k < k_end; ++k) {
      grads.gamma[k / H][k % H] = d_gamma[k - k_begin];
      grads.beta[k / H][k % H] = d_beta[k - k_begin];
    }
  });
}

}  // namespace rnnkit
