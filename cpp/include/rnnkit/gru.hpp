// GRU over a whole sequence, in two variants that are different functions:
//
// TF1's GRUCell (gru_forward / gru_backward): the reset gate scales h
// *before* the candidate's matmul.
//   [r, u] = σ([x, h] · gates/kernel + gates/bias)
//   c      = act([x, r ⊙ h] · candidate/kernel + candidate/bias)
//   h'     = u ⊙ h + (1 - u) ⊙ c
//
// "Reset after" (gru_reset_after_forward / gru_reset_after_backward): the
// formula of PyTorch's nn.GRU, Keras 3's GRU(reset_after=True) and cuDNN; the
// reset gate scales h · W_h *after* the matmul.
//   [r, u] = σ([x, h] · gates/kernel + gates/bias)
//   c      = act(x · candidate/input/kernel + candidate/input/bias
//                + r ⊙ (h · candidate/hidden/kernel + candidate/hidden/bias))
//   h'     = u ⊙ h + (1 - u) ⊙ c
// Its variables (rnnkit's names; TF1 has no such cell):
//   gates/kernel [D + H, 2H] (columns r | u), gates/bias [2H],
//   candidate/input/kernel [D, H], candidate/input/bias [H],
//   candidate/hidden/kernel [H, H], candidate/hidden/bias [H].
// From PyTorch (gate rows r, z, n; PyTorch's z is u and n is c, so
// h' = (1 - z) ⊙ n + z ⊙ h):
//   gates/kernel = [[W_ir; W_iz]^T ; [W_hr; W_hz]^T],
//   gates/bias = b_i[r,z] + b_h[r,z] (the two gate biases only ever appear
//   summed), candidate/input/kernel = W_in^T, candidate/input/bias = b_in,
//   candidate/hidden/kernel = W_hn^T, candidate/hidden/bias = b_hn
//   (b_hn cannot be folded: r multiplies it).
//
// Both are cells of cell.hpp's time loop (x · W_x for all rows before the
// loop, only the recurrent products per step, the weight gradients and dx
// after the backward loop); this file holds their products and row passes.
// Backward overwrites the tape's gate buffer in place with the gradients of
// the pre-activations.
#pragma once

#include "rnnkit/cell.hpp"

namespace rnnkit {

namespace detail {
// D and H from gates/kernel [D + H, 2H] and gates/bias [2H], which both
// variants share; the other shapes follow and are checked by name.
inline void gru_dims(const Shape* shapes, Index& D, Index& H) {
  const Shape& bias = shapes[1];
  if (bias.size() != 1 || bias[0] == 0 || bias[0] % 2 != 0)
    throw std::invalid_argument("gates/bias must have shape [2H] with H > 0, got " + shape_str(bias));
  H = bias[0] / 2;
  const Shape& kernel = shapes[0];
  if (kernel.size() != 2 || kernel[1] != 2 * H || kernel[0] < H)
    throw std::invalid_argument("gates/kernel must have shape [D + " + std::to_string(H) + ", " +
                                std::to_string(2 * H) + "], got " + shape_str(kernel));
  D = kernel[0] - H;
}

// What both variants share: D and H from gates/kernel and gates/bias (their
// first variables), one state part, the candidate's activation.
struct GruBase {
  static constexpr std::array<StatePart, 1> kState{{{"h", "h0", "dh_final"}}};
  static constexpr std::array<OptionSpec, 1> kOptions{{{"activation", OptionKind::Activation}}};
  // h_prev reaches h' directly (u ⊙ h_prev), besides the products.
  static constexpr bool kStateGradAdds = true;

  Index D = 0, H = 0;
  Activation activation = Activation::Tanh;

  GruBase(const Shape* shapes, const OptionValue* options) {
    gru_dims(shapes, D, H);
    activation = static_cast<Activation>(static_cast<int>(*options[0]));
  }
  Index state_width(size_t) const { return H; }
  template <typename T>
  Index recurrent_bytes() const {
    return Index(sizeof(T)) * 3 * H * H;
  }
};
}  // namespace detail

// ---- TF1's GRUCell ------------------------------------------------------------

struct GruCell : detail::GruBase {
  static constexpr const char* kName = "gru";
  static constexpr std::array<VariableSpec, 4> kVariables{{{"gates/kernel", "gates_kernel"},
                                                           {"gates/bias", "gates_bias"},
                                                           {"candidate/kernel", "candidate_kernel"},
                                                           {"candidate/bias", "candidate_bias"}}};
  // gates: [rows, 3H] r | u | c after activation; rh: r ⊙ h_prev, the
  // candidate's recurrent input (zero on padded steps)
  static constexpr std::array<TapePart, 3> kTape{
      {{"gates", Saved::Gates}, {"h_prev", Saved::StatePrev}, {"rh", Saved::Scratch}}};
  using GruBase::GruBase;

  Shape variable_shape(size_t i) const {
    switch (i) {
      case 0: return {D + H, 2 * H};
      case 1: return {2 * H};
      case 2: return {D + H, H};
      default: return {H};
    }
  }
  Index gate_width() const { return 3 * H; }
  Index input_columns() const { return 3 * H; }
  Index scratch_width() const { return H; }  // r ⊙ h; backward: its gradient

  // [D, 3H] = both kernels' x rows side by side (columns r | u | c), so that
  // x is read by one product.
  template <typename T>
  Mat<T> input_kernel(const T* const* v) const {
    Mat<T> W_x(D, 3 * H);
    W_x << CMatMap<T>(v[0], D + H, 2 * H).topRows(D), CMatMap<T>(v[2], D + H, H).topRows(D);
    return W_x;
  }

  template <typename T>
  struct Forward {
    Mat<T> W_x_fused;
    CMatMap<T> W_x;  // [D, 3H]
    RowVec<T> x_bias;  // [3H]
    RowVec<T> tail_bias;
    PackedRhs<T> W_gh, W_ch;  // the kernels' h rows, packed once, used at every step
    Forward(const GruCell& c, const T* const* v, Index rows)
        : W_x_fused(c.input_kernel(v)),
          W_x(W_x_fused.data(), c.D, 3 * c.H),
          x_bias(3 * c.H),
          W_gh(CMatMap<T>(v[0], c.D + c.H, 2 * c.H).bottomRows(c.H), rows),
          W_ch(CMatMap<T>(v[2], c.D + c.H, c.H).bottomRows(c.H), rows) {
      x_bias << CRowMap<T>(v[1], 2 * c.H), CRowMap<T>(v[3], c.H);
    }
  };

  template <typename T>
  struct Backward {
    Mat<T> W_x_fused;  // for dx only
    CMatMap<T> W_x;
    PackedRhs<T> W_gh_t, W_ch_t;
    Backward(const GruCell& c, const T* const* v, Index rows, bool input_grad)
        : W_x_fused(input_grad ? c.input_kernel(v) : Mat<T>(0, 3 * c.H)),
          W_x(W_x_fused.data(), W_x_fused.rows(), 3 * c.H),
          W_gh_t(CMatMap<T>(v[0], c.D + c.H, 2 * c.H).bottomRows(c.H).transpose(), rows),
          W_ch_t(CMatMap<T>(v[2], c.D + c.H, c.H).bottomRows(c.H).transpose(), rows) {}
  };

  template <typename T>
  void forward_step(const Forward<T>& w, ForwardRows<T>& s) const {
    s.multiply(s.z.leftCols(2 * H), s.h, w.W_gh);
    // The candidate's product needs r ⊙ h: the gates first, then (after that
    // product) the candidate and h'.
    s.pass(
        2 * H,
        [&](Index b) {
          T* zb = &s.z(b, 0);
          for (Index k0 = 0; k0 < 2 * H; k0 += kChunk<T>) {  // r | u side by side: one pass
            const RowChunk<T> at(k0, 2 * H);
            at.store(at.load(zb).logistic(), zb);
          }
          T* rhb = &s.scratch(b, 0);
          const T* hb = &s.h(b, 0);
          for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
            const RowChunk<T> at(k0, H);
            at.store(at.load(zb) * at.load(hb), rhb);
          }
        },
        // zero keeps the padded rows of the tape finite: backward multiplies
        // them by zero gradients in the weight products
        [&](Index b) { s.scratch.row(b).setZero(); });
    s.multiply(s.z.rightCols(H), s.scratch, w.W_ch);
    s.last_pass(H, [&](Index b, const NewState<T>& next) {
      T* zb = &s.z(b, 0);
      const T* hb = &s.h(b, 0);
      for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
        const RowChunk<T> at(k0, H);
        Chunk<T> cand = at.load(zb + 2 * H);
        activate_inplace(cand, activation);
        at.store(cand, zb + 2 * H);
        const Chunk<T> u = at.load(zb + H), h_new = u * at.load(hb) + (T(1) - u) * cand;
        next.store(at, h_new);
      }
    });
  }

  template <typename T>
  void backward_step(const Backward<T>& w, BackwardRows<T>& s) const {
    const Index G = 3 * H;
    // Through h' = u ⊙ h + (1 - u) ⊙ c and the candidate's activation.
    s.first_pass(G, [&](Index b) {
      T *zb = &s.dz(b, 0), *dhb = &s.dh(b, 0);
      const T *mask = s.mask(b), *ob = s.d_out.row(b).data(), *hp = s.h_prev.row(b).data();
      for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
        const RowChunk<T> at(k0, H);
        const Chunk<T> g = step_state_grad(at, dhb, mask, ob), u = at.load(zb + H), c = at.load(zb + 2 * H);
        Chunk<T> grad;
        activation_grad(grad, c, activation);
        at.store(g * (at.load(hp) - c) * u * (T(1) - u), zb + H);
        at.store(g * (T(1) - u) * grad, zb + 2 * H);
        at.store(g * u, dhb);
      }
    });
    s.multiply(s.d_scratch, s.dz.rightCols(H), w.W_ch_t);
    // Through r ⊙ h and σ of the reset gate.
    s.pass(H, [&](Index b) {
      T *zb = &s.dz(b, 0), *dhb = &s.dh(b, 0);
      const T *drh = &s.d_scratch(b, 0), *hp = s.h_prev.row(b).data();
      for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
        const RowChunk<T> at(k0, H);
        const Chunk<T> r = at.load(zb), d = at.load(drh);
        at.store(d * at.load(hp) * r * (T(1) - r), zb);
        at.store(at.load(dhb) + d * r, dhb);
      }
    });
    s.multiply(s.dh_rec, s.dz.leftCols(2 * H), w.W_gh_t);
  }

  // d: the variables' gradients in kVariables order
  template <typename T>
  void weight_grads(const Backward<T>&, const SeqInput<T>& in, Index r0, Index n, T* const* tape,
                    const std::array<T*, 4>& d) const {
    const Index G = 3 * H;
    CMatMap<T> d_z(tape[0] + r0 * G, n, G);
    MatMap<T> d_gates_kernel(d[0], D + H, 2 * H);
    MatMap<T> d_cand_kernel(d[2], D + H, H);
    {
      Mat<T> dW_x(D, G);
      input_weight_grad(dW_x, in, n, d_z);
      d_gates_kernel.topRows(D) = dW_x.leftCols(2 * H);
      d_cand_kernel.topRows(D) = dW_x.rightCols(H);
    }
    gemm(d_gates_kernel.bottomRows(H), CMatMap<T>(tape[1] + r0 * H, n, H).transpose(), d_z.leftCols(2 * H));
    gemm(d_cand_kernel.bottomRows(H), CMatMap<T>(tape[2] + r0 * H, n, H).transpose(), d_z.rightCols(H));
    RowVec<T> d_bias(G);
    bias_grad(d_z, n, d_bias.data());
    RowMap<T>(d[1], 2 * H) = d_bias.leftCols(2 * H);
    RowMap<T>(d[3], H) = d_bias.rightCols(H);
  }
};

// ---- reset after (PyTorch / Keras 3 / cuDNN) -----------------------------------

// The gate buffer's columns are ordered c | r | u | hn (hn = h · W_ch + b_ch)
// so that both fused matrices see one contiguous window of it: the x side
// (c, r, u: columns [0, 3H)) and the h side (r, u, hn: columns [H, 4H)). Each
// step is then one recurrent product into the window [H, 4H), and after the
// backward loop dW_x, dW_h and dx are one product each.
struct GruResetAfterCell : detail::GruBase {
  static constexpr const char* kName = "gru_reset_after";
  static constexpr std::array<VariableSpec, 6> kVariables{{{"gates/kernel", "gates_kernel"},
                                                           {"gates/bias", "gates_bias"},
                                                           {"candidate/input/kernel", "candidate_input_kernel"},
                                                           {"candidate/input/bias", "candidate_input_bias"},
                                                           {"candidate/hidden/kernel", "candidate_hidden_kernel"},
                                                           {"candidate/hidden/bias", "candidate_hidden_bias"}}};
  // gates: [rows, 4H] c | r | u (activated) | hn; backward: d(pre-activations) | d hn
  static constexpr std::array<TapePart, 2> kTape{{{"gates", Saved::Gates}, {"h_prev", Saved::StatePrev}}};
  using GruBase::GruBase;

  Shape variable_shape(size_t i) const {
    switch (i) {
      case 0: return {D + H, 2 * H};
      case 1: return {2 * H};
      case 2: return {D, H};
      case 4: return {H, H};
      default: return {H};
    }
  }
  Index gate_width() const { return 4 * H; }
  Index input_columns() const { return 3 * H; }  // hn starts at candidate/hidden/bias: no x part
  Index scratch_width() const { return 0; }

  // [D, 3H] = [candidate/input/kernel | gates/kernel's x rows]: the x side, columns c | r | u.
  template <typename T>
  Mat<T> input_kernel(const T* const* v) const {
    Mat<T> W_x(D, 3 * H);
    W_x << CMatMap<T>(v[2], D, H), CMatMap<T>(v[0], D + H, 2 * H).topRows(D);
    return W_x;
  }
  // [H, 3H] = [gates/kernel's h rows | candidate/hidden/kernel]: the h side, columns r | u | hn.
  template <typename T>
  Mat<T> recurrent_kernel(const T* const* v) const {
    Mat<T> W_h(H, 3 * H);
    W_h << CMatMap<T>(v[0], D + H, 2 * H).bottomRows(H), CMatMap<T>(v[4], H, H);
    return W_h;
  }

  template <typename T>
  struct Forward {
    Mat<T> W_x_fused;
    CMatMap<T> W_x;
    RowVec<T> x_bias;     // [3H] columns as W_x
    RowVec<T> tail_bias;  // [H] candidate/hidden/bias, where hn starts
    Mat<T> W_h_fused;
    PackedRhs<T> W_h;
    Forward(const GruResetAfterCell& c, const T* const* v, Index rows)
        : W_x_fused(c.input_kernel(v)),
          W_x(W_x_fused.data(), c.D, 3 * c.H),
          x_bias(3 * c.H),
          tail_bias(CRowMap<T>(v[5], c.H)),
          W_h_fused(c.recurrent_kernel(v)),
          W_h(W_h_fused, rows) {
      x_bias << CRowMap<T>(v[3], c.H), CRowMap<T>(v[1], 2 * c.H);
    }
  };

  template <typename T>
  struct Backward {
    Mat<T> W_x_fused;  // for dx only
    CMatMap<T> W_x;
    Mat<T> W_h_fused;
    PackedRhs<T> W_h_t;
    Backward(const GruResetAfterCell& c, const T* const* v, Index rows, bool input_grad)
        : W_x_fused(input_grad ? c.input_kernel(v) : Mat<T>(0, 3 * c.H)),
          W_x(W_x_fused.data(), W_x_fused.rows(), 3 * c.H),
          W_h_fused(c.recurrent_kernel(v)),
          W_h_t(W_h_fused.transpose(), rows) {}
  };

  template <typename T>
  void forward_step(const Forward<T>& w, ForwardRows<T>& s) const {
    s.multiply(s.z.rightCols(3 * H), s.h, w.W_h);
    s.last_pass(4 * H, [&](Index b, const NewState<T>& next) {
      T* zb = &s.z(b, 0);
      for (Index k0 = 0; k0 < 2 * H; k0 += kChunk<T>) {  // r | u
        const RowChunk<T> at(k0, 2 * H);
        at.store(at.load(zb + H).logistic(), zb + H);
      }
      for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
        const RowChunk<T> at(k0, H);
        Chunk<T> cand = at.load(zb) + at.load(zb + H) * at.load(zb + 3 * H);  // x side + r ⊙ hn
        activate_inplace(cand, activation);
        at.store(cand, zb);
      }
      const T* hb = &s.h(b, 0);
      for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
        const RowChunk<T> at(k0, H);
        const Chunk<T> u = at.load(zb + 2 * H), h_new = u * at.load(hb) + (T(1) - u) * at.load(zb);
        next.store(at, h_new);
      }
    });
  }

  template <typename T>
  void backward_step(const Backward<T>& w, BackwardRows<T>& s) const {
    s.first_pass(4 * H, [&](Index b) {
      T *zb = &s.dz(b, 0), *dhb = &s.dh(b, 0);
      const T *mask = s.mask(b), *ob = s.d_out.row(b).data(), *hp = s.h_prev.row(b).data();
      for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
        const RowChunk<T> at(k0, H);
        const Chunk<T> g = step_state_grad(at, dhb, mask, ob);
        const Chunk<T> c = at.load(zb), r = at.load(zb + H), u = at.load(zb + 2 * H), hn = at.load(zb + 3 * H);
        Chunk<T> d_zc;
        activation_grad(d_zc, c, activation);
        d_zc = g * (T(1) - u) * d_zc;
        at.store(d_zc, zb);
        at.store(d_zc * hn * r * (T(1) - r), zb + H);
        at.store(g * (at.load(hp) - c) * u * (T(1) - u), zb + 2 * H);
        at.store(d_zc * r, zb + 3 * H);
        at.store(g * u, dhb);
      }
    });
    s.multiply(s.dh_rec, s.dz.rightCols(3 * H), w.W_h_t);
  }

  // d: the variables' gradients in kVariables order
  template <typename T>
  void weight_grads(const Backward<T>&, const SeqInput<T>& in, Index r0, Index n, T* const* tape,
                    const std::array<T*, 6>& d) const {
    const Index G = 4 * H;
    CMatMap<T> d_z(tape[0] + r0 * G, n, G);
    MatMap<T> d_gates_kernel(d[0], D + H, 2 * H);
    {
      Mat<T> dW_x(D, 3 * H);  // columns c | r | u
      input_weight_grad(dW_x, in, n, d_z.leftCols(3 * H));
      MatMap<T>(d[2], D, H) = dW_x.leftCols(H);
      d_gates_kernel.topRows(D) = dW_x.rightCols(2 * H);
    }
    Mat<T> dW_h(H, 3 * H);  // columns r | u | hn
    gemm(dW_h, CMatMap<T>(tape[1] + r0 * H, n, H).transpose(), d_z.rightCols(3 * H));
    d_gates_kernel.bottomRows(H) = dW_h.leftCols(2 * H);
    MatMap<T>(d[4], H, H) = dW_h.rightCols(H);
    RowVec<T> d_bias(G);
    bias_grad(d_z, n, d_bias.data());
    RowMap<T>(d[3], H) = d_bias.leftCols(H);
    RowMap<T>(d[1], 2 * H) = d_bias.middleCols(H, 2 * H);
    RowMap<T>(d[5], H) = d_bias.rightCols(H);
  }
};

}  // namespace rnnkit
