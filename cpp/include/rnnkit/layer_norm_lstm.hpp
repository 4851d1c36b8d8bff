// TF1's tf.contrib.rnn.LayerNormBasicLSTMCell, described for the time loop of
// cell.hpp: an LSTM whose four gate pre-activations and new cell state are
// each layer-normalised over their H units (Ba, Kiros and Hinton,
// arXiv:1607.06450), with optional dropout on the candidate g (Semeniuta et
// al., arXiv:1603.05118).
//
// Per step (TF1's contrib/rnn/python/ops/rnn_cell.py and
// tf.contrib.layers.layer_norm, variance_epsilon = 1e-12):
//   z = [x, h_prev] · kernel  (+ bias only without layer norm)  -> i, j, f, o
//   LN_q(v) = (v - mean(v)) / sqrt(var(v) + 1e-12) ⊙ gamma_q + beta_q
//             (mean and the biased variance over the row's H units)
//   i, j, f, o = LN_input(i), LN_transform(j), LN_forget(f), LN_output(o)
//   g = act(j) ⊙ mask      (mask: 0 or 1/keep_prob, see dropout_keep; else 1)
//   c = LN_state(σ(f + forget_bias) ⊙ c_prev + σ(i) ⊙ g)
//   h = act(c) ⊙ σ(o)
// Without layer norm every LN_q is the identity and the cell is BasicLSTMCell.
//
// A row of the gate buffer holds z (4H) and, with layer norm, what backward
// needs of the five norms: their normalised values (v - mean) / std (5H),
// their 1 / std (5), and room for the gradients of their outputs (5H), from
// which the gains' and shifts' gradients are summed after the loop.
#pragma once

#include "rnnkit/cell.hpp"
#include "rnnkit/random.hpp"

namespace rnnkit {

// tf.contrib.layers.layer_norm's variance_epsilon.
constexpr double kLayerNormEpsilon = 1e-12;

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

}  // namespace detail

// The candidate's dropout mask, drawn from a counter: entry k of batch row b
// at step t is kept when uniform(seed, ((first_row + b)·T + t)·H + k) < keep
// (random.hpp), so forward and backward draw the same mask, in either
// layout and for every thread count, and a row's mask depends on its index
// in the global batch (first_row: that of the call's row 0), not on how a
// batch is split into calls. keep = 1: no dropout.
struct CandidateDropout {
  double keep = 1.0;
  uint64_t seed = 0;
  uint64_t first_row = 0;

  bool on() const { return keep < 1.0; }
  // Units [k0, k0 + at.n) of the mask of the row whose unit 0 is draw `first`.
  template <typename T>
  Chunk<T> mask(const RowChunk<T>& at, uint64_t first) const {
    Chunk<T> m = Chunk<T>::Zero();
    const T kept = T(1.0 / keep);
    for (Index k = 0; k < at.n; ++k) m[k] = uniform(seed, first + uint64_t(at.k0 + k)) < keep ? kept : T(0);
    return m;
  }
};

struct LayerNormLstmCell {
  static constexpr const char* kName = "layer_norm_lstm";
  // The five layer norms in TF's creation order; gate q's units are columns
  // [qH, (q + 1)H) of z, the state's norm is the fifth.
  static constexpr int kNorms = 5;
  static constexpr std::array<VariableSpec, 2 + 2 * kNorms> kVariables{{
      {"kernel", "kernel"},
      {"bias", "bias", true},
      {"input/gamma", "input_gamma", true},
      {"input/beta", "input_beta", true},
      {"transform/gamma", "transform_gamma", true},
      {"transform/beta", "transform_beta", true},
      {"forget/gamma", "forget_gamma", true},
      {"forget/beta", "forget_beta", true},
      {"output/gamma", "output_gamma", true},
      {"output/beta", "output_beta", true},
      {"state/gamma", "state_gamma", true},
      {"state/beta", "state_beta", true},
  }};
  static constexpr std::array<StatePart, 2> kState{{{"c", "c0", "dc_final"}, {"h", "h0", "dh_final"}}};
  static constexpr std::array<OptionSpec, 5> kOptions{{{"forget_bias", OptionKind::Number, 1.0},
                                                       {"activation", OptionKind::Activation},
                                                       {"dropout_keep_prob", OptionKind::Number, 1.0},
                                                       {"dropout_seed", OptionKind::Number, 0.0},
                                                       {"dropout_first_row", OptionKind::Number, 0.0}}};
  static constexpr std::array<TapePart, 4> kTape{{{"gates", Saved::Gates},
                                                  {"h_prev", Saved::StatePrev},
                                                  {"c", Saved::StateAfter, 0},
                                                  {"c0", Saved::Initial, 0}}};
  // h_prev reaches the step only through the recurrent product.
  static constexpr bool kStateGradAdds = false;

  Index D = 0, H = 0;
  bool layer_norm = true;
  double forget_bias = 1.0;
  Activation activation = Activation::Tanh;
  CandidateDropout dropout;

  LayerNormLstmCell(const Shape* shapes, const OptionValue* options) {
    const Shape& kernel = shapes[0];
    if (kernel.size() != 2 || kernel[1] == 0 || kernel[1] % 4 != 0 || kernel[0] <= kernel[1] / 4)
      throw std::invalid_argument("kernel must have shape [D + H, 4H] with D, H > 0, got " + shape_str(kernel));
    H = kernel[1] / 4;
    D = kernel[0] - H;
    layer_norm = !shapes[2].absent();
    if (layer_norm == !shapes[1].absent())
      throw std::invalid_argument("give either bias (layer_norm=False) or the layer norms' gammas and betas, "
                                  "not both or neither");
    for (size_t i = 2; i < kVariables.size(); ++i)
      if (shapes[i].absent() == layer_norm)
        throw std::invalid_argument(std::string(kVariables[i].name) + (layer_norm ? " is missing" : " needs input/gamma"));
    forget_bias = *options[0];
    activation = static_cast<Activation>(static_cast<int>(*options[1]));
    dropout.keep = *options[2];
    if (!(dropout.keep > 0.0 && dropout.keep <= 1.0))
      throw std::invalid_argument("dropout_keep_prob must lie in (0, 1], got " + std::to_string(dropout.keep));
    dropout.seed = whole_number(*options[3], "dropout_seed");
    dropout.first_row = whole_number(*options[4], "dropout_first_row");
  }

  // An option that must be an integer in [0, 2**53) (exact in a double).
  static uint64_t whole_number(double value, const char* name) {
    if (!(value >= 0.0 && value < 0x1.0p53 && value == std::floor(value)))
      throw std::invalid_argument(std::string(name) + " must be an integer in [0, 2**53), got " +
                                  std::to_string(value));
    return static_cast<uint64_t>(value);
  }

  Shape variable_shape(size_t i) const {
    if (i == 0) return {D + H, 4 * H};
    if (i == 1) return layer_norm ? Shape() : Shape{4 * H};
    return layer_norm ? Shape{H} : Shape();
  }
  Index state_width(size_t) const { return H; }
  // z, then (layer norm) the normalised values, 1 / std and their outputs' gradients
  Index gate_width() const { return layer_norm ? 4 * H + kNorms * (2 * H + 1) : 4 * H; }
  Index input_columns() const { return 4 * H; }
  Index scratch_width() const { return 0; }
  template <typename T>
  Index recurrent_bytes() const {
    return Index(sizeof(T)) * 4 * H * H;
  }

  // Columns of a gate row.
  Index norm_column(int q) const { return 4 * H + q * H; }
  Index rstd_column() const { return 4 * H + kNorms * H; }
  Index d_norm_column(int q) const { return rstd_column() + kNorms + q * H; }

  template <typename T>
  struct Norms {
    const T* gamma[kNorms] = {};
    const T* beta[kNorms] = {};
    Norms(const LayerNormLstmCell& c, const T* const* v) {
      for (int q = 0; c.layer_norm && q < kNorms; ++q) {
        gamma[q] = v[2 + 2 * q];
        beta[q] = v[3 + 2 * q];
      }
    }
  };

  template <typename T>
  struct Forward {
    CMatMap<T> W_x;       // [D, 4H]
    RowVec<T> x_bias;     // bias, or zeros with layer norm
    RowVec<T> tail_bias;  // zeros: the layer norms' columns
    PackedRhs<T> W_h;     // packed once, used at every step
    Norms<T> norms;
    Forward(const LayerNormLstmCell& c, const T* const* v, Index rows)
        : W_x(v[0], c.D, 4 * c.H),
          x_bias(c.layer_norm ? RowVec<T>(RowVec<T>::Zero(4 * c.H)) : RowVec<T>(CRowMap<T>(v[1], 4 * c.H))),
          tail_bias(RowVec<T>::Zero(c.gate_width() - 4 * c.H)),
          W_h(CMatMap<T>(v[0], c.D + c.H, 4 * c.H).bottomRows(c.H), rows),
          norms(c, v) {}
  };

  template <typename T>
  struct Backward {
    CMatMap<T> W_x;
    PackedRhs<T> W_h_t;
    Norms<T> norms;
    Backward(const LayerNormLstmCell& c, const T* const* v, Index rows, bool)
        : W_x(v[0], c.D, 4 * c.H),
          W_h_t(CMatMap<T>(v[0], c.D + c.H, 4 * c.H).bottomRows(c.H).transpose(), rows),
          norms(c, v) {}
  };

  // The first draw of the candidate mask of batch row b at step t.
  uint64_t first_draw(const SeqLayout& seq, Index t, Index b) const {
    return (dropout.first_row + uint64_t(b)) * uint64_t(seq.T * H) + uint64_t(t * H);
  }

  // One row: z [G] the products in, σ(i), act(j), σ(f), σ(o) and the norms'
  // values out; c: [H] c_prev in, the new c out. One compiled body
  // (noinline) serves every caller, so all round alike.
  template <typename T>
  [[gnu::noinline]] void row_forward(const Norms<T>& w, T* z, T* c, uint64_t first_draw) const {
    const T fb = T(forget_bias);
    T* rstd = z + rstd_column();
    if (layer_norm)
      for (int q = 0; q < 4; ++q) {
        rstd[q] = detail::layer_normalize(z + q * H, H, z + norm_column(q));
        detail::gain_and_shift(z + norm_column(q), w.gamma[q], w.beta[q], H, z + q * H);
      }
    for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
      const RowChunk<T> at(k0, H);
      Chunk<T> i = at.load(z), j = at.load(z + H), f = at.load(z + 2 * H), o = at.load(z + 3 * H);
      i = i.logistic();
      activate_inplace(j, activation);
      f = (f + fb).logistic();
      o = o.logistic();
      const Chunk<T> g = dropout.on() ? Chunk<T>(j * dropout.mask<T>(at, first_draw)) : j;
      at.store(f * at.load(c) + i * g, c);
      at.store(i, z);
      at.store(j, z + H);
      at.store(f, z + 2 * H);
      at.store(o, z + 3 * H);
    }
    if (layer_norm) {
      rstd[4] = detail::layer_normalize(c, H, z + norm_column(4));
      detail::gain_and_shift(z + norm_column(4), w.gamma[4], w.beta[4], H, c);
    }
  }

  // One row back. z: forward's row in, d z (and the norms' output
  // gradients) out; c, c_prev: [H] the new and the previous c; d_h: [H] d h
  // of the state (through the state mask `mask`) and d_out of the output;
  // dc: [H] d c in, d c_prev out.
  template <typename T>
  [[gnu::noinline]] void row_backward(const Norms<T>& w, T* z, const T* c, const T* c_prev, const T* d_h,
                                      const T* mask, const T* d_out, T* dc, uint64_t first_draw) const {
    const T* rstd = z + rstd_column();
    // through h = act(c) ⊙ σ(o): d c (after the state's norm) and d o
    T* d_c = layer_norm ? z + d_norm_column(4) : dc;
    for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
      const RowChunk<T> at(k0, H);
      const Chunk<T> o = at.load(z + 3 * H), dh = step_state_grad(at, d_h, mask, d_out);
      Chunk<T> ac = at.load(c), grad;
      activate_inplace(ac, activation);
      activation_grad(grad, ac, activation);
      at.store(at.load(dc) + dh * o * grad, d_c);
      at.store(dh * ac * o * (T(1) - o), z + 3 * H);
    }
    if (layer_norm) detail::layer_norm_grad(d_c, z + norm_column(4), w.gamma[4], rstd[4], H, dc);
    // through c = σ(f) ⊙ c_prev + σ(i) ⊙ act(j) ⊙ mask
    for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
      const RowChunk<T> at(k0, H);
      const Chunk<T> i = at.load(z), j = at.load(z + H), f = at.load(z + 2 * H), dcr = at.load(dc);
      Chunk<T> d_g = dcr * i, g = j, grad;
      if (dropout.on()) {
        const Chunk<T> m = dropout.mask<T>(at, first_draw);
        g *= m;
        d_g *= m;
      }
      activation_grad(grad, j, activation);
      at.store(dcr * g * i * (T(1) - i), z);
      at.store(d_g * grad, z + H);
      at.store(dcr * at.load(c_prev) * f * (T(1) - f), z + 2 * H);
      at.store(dcr * f, dc);
    }
    if (layer_norm)
      for (int q = 0; q < 4; ++q) {
        std::copy(z + q * H, z + (q + 1) * H, z + d_norm_column(q));
        detail::layer_norm_grad(z + d_norm_column(q), z + norm_column(q), w.gamma[q], rstd[q], H, z + q * H);
      }
  }

  template <typename T>
  void forward_step(const Forward<T>& w, ForwardRows<T>& s) const {
    s.multiply(s.z.leftCols(4 * H), s.h, w.W_h);
    MatMap<T>& c = s.state[0];
    s.pass(
        gate_width(), [&](Index b) { row_forward(w.norms, &s.z(b, 0), &c(b, 0), first_draw(s.seq, s.t, b)); },
        [](Index) {});
    s.last_pass(H, [&](Index b, const NewState<T>& next) {  // h = act(c) ⊙ σ(o)
      const T *cb = &c(b, 0), *o = &s.z(b, 3 * H);
      for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
        const RowChunk<T> at(k0, H);
        Chunk<T> ac = at.load(cb);
        activate_inplace(ac, activation);
        next.store(at, ac * at.load(o));
      }
    });
  }

  template <typename T>
  void backward_step(const Backward<T>& w, BackwardRows<T>& s) const {
    s.first_pass(gate_width(), [&](Index b) {
      row_backward(w.norms, &s.dz(b, 0), s.state_after(0, b), s.state_before(0, b), &s.dh(b, 0), s.mask(b),
                   s.d_out.row(b).data(), &s.d_state[0](b, 0), first_draw(s.seq, s.t, b));
    });
    s.multiply(s.dh_rec, s.dz.leftCols(4 * H), w.W_h_t);
  }

  // d: d kernel [D + H, 4H], d bias [4H] (without layer norm), then d gamma
  // and d beta [H] of each norm (with it): the norms' as Σ d_out ⊙ normalised
  // and Σ d_out over the rows in order, threads splitting the columns.
  template <typename T>
  void weight_grads(const Backward<T>&, const SeqInput<T>& in, Index r0, Index n, T* const* tape,
                    const std::array<T*, kVariables.size()>& d) const {
    const Index G = gate_width();
    CMatMap<T> rows(tape[0] + r0 * G, n, G);
    kernel_grad(MatMap<T>(d[0], D + H, 4 * H), in, n, tape[1] + r0 * H, rows.leftCols(4 * H),
                layer_norm ? nullptr : d[1]);
    if (!layer_norm) return;
    constexpr Index kColumns = 64;
    const Index N = kNorms * H;
    parallel_for((N + kColumns - 1) / kColumns, worth_parallel(n, N), [&](Index block) {
      const Index k_begin = block * kColumns, k_end = std::min(N, k_begin + kColumns);
      T d_gamma[kColumns] = {}, d_beta[kColumns] = {};
      for (Index r = 0; r < n; ++r) {
        const T* y = rows.data() + r * G + norm_column(0);
        const T* dy = rows.data() + r * G + d_norm_column(0);
        for (Index k = k_begin; k < k_end; ++k) {
          d_gamma[k - k_begin] += dy[k] * y[k];
          d_beta[k - k_begin] += dy[k];
        }
      }
      for (Index k = k_begin; k < k_end; ++k) {
        d[2 + 2 * (k / H)][k % H] = d_gamma[k - k_begin];
        d[3 + 2 * (k / H)][k % H] = d_beta[k - k_begin];
      }
    });
  }
};

}  // namespace rnnkit
