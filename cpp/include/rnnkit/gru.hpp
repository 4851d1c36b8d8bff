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
// Both pairs follow basic_rnn.hpp: x · W_x for all T*B rows is one GEMM before
// the loop, each step does only the recurrent GEMM(s) and fused elementwise
// passes over batch rows (or, when the recurrent weights fit a core's L2, each
// thread runs its own block of batch rows through every step: batch_blocks),
// and the weight gradients and dx are GEMMs over all rows, or over fixed
// groups of batch rows (grad_blocks), after the backward loop. Backward
// overwrites the tape's gate
// buffer in place with the gradients of the pre-activations. Every GEMM and
// bias sum goes through gemm.hpp / column_sums, so results are bit-identical
// for every thread count. Inputs may be token ids (inputs.hpp) and the
// carried state may be dropped (StateMask) as in the other cells.
#pragma once

#include "rnnkit/inputs.hpp"
#include "rnnkit/rowmath.hpp"

namespace rnnkit {

struct GruConfig {
  Index D = 0, H = 0;
  Activation activation = Activation::Tanh;
};

// ---- TF1's GRUCell ------------------------------------------------------------

template <typename T>
struct GruWeights {
  const T* gates_kernel = nullptr;      // [D + H, 2H]: rows [0, D) act on x, [D, D+H) on h; columns r | u
  const T* gates_bias = nullptr;        // [2H]
  const T* candidate_kernel = nullptr;  // [D + H, H]: rows [0, D) act on x, [D, D+H) on r ⊙ h
  const T* candidate_bias = nullptr;    // [H]
};

template <typename T>
struct GruGrads {
  T* gates_kernel = nullptr;      // [D + H, 2H]
  T* gates_bias = nullptr;        // [2H]
  T* candidate_kernel = nullptr;  // [D + H, H]
  T* candidate_bias = nullptr;    // [H]
};

// What backward needs, all [rows, *] in the sequence's own order; owned by
// the caller; null `gates` means inference (no tape).
template <typename T>
struct GruTape {
  T* gates = nullptr;   // [rows, 3H] r | u | c after activation; backward: d(pre-activations)
  T* h_prev = nullptr;  // [rows, H] recurrent input of step t
  T* rh = nullptr;      // [rows, H] r ⊙ h_prev, the candidate's recurrent input (zero on padded steps)
};

namespace detail {
// Step t_next's product gives d h_prev for every row; a row still live at
// t_next adds it to the gradient of the state entering that step. Called
// from the next (earlier) step's parallel row pass, and once after the loop.
template <typename T>
void add_recurrent_grad(MatMap<T>& dh, const Mat<T>& dh_rec, const SeqLayout& seq, const int32_t* sequence_length,
                        Index t_next, Index b) {
  if (t_next < seq.T && active(sequence_length, t_next, b)) dh.row(b) += dh_rec.row(b);
}

// [D, 3H] = both kernels' x rows side by side (columns r | u | c), so that x
// is read by one GEMM; copying the weights costs D*3H, the GEMM rows*D*3H.
template <typename T>
Mat<T> gru_W_x(const GruWeights<T>& w, Index D, Index H) {
  Mat<T> W_x(D, 3 * H);
  W_x << CMatMap<T>(w.gates_kernel, D + H, 2 * H).topRows(D), CMatMap<T>(w.candidate_kernel, D + H, H).topRows(D);
  return W_x;
}
}  // namespace detail

// in: x [rows, D] or ids [rows]; sequence_length: [B] or null; h0: [B, H]
// outputs: [rows, H] (zero on padded steps); h_final: [B, H]
// gates_ws: [rows, 3H] scratch used when tape.gates is null.
template <typename T>
void gru_forward(const GruConfig& cfg, const GruWeights<T>& w, const SeqLayout& seq, const SeqInput<T>& in,
                 const int32_t* sequence_length, const StateMask<T>& state_mask, const T* h0, T* outputs, T* h_final,
                 const GruTape<T>& tape, T* gates_ws) {
  const Index D = cfg.D, H = cfg.H, G = 3 * H, B = seq.B, rows = seq.rows();
  const bool training = tape.gates != nullptr;
  T* gates = training ? tape.gates : gates_ws;
  CMatMap<T> gates_kernel(w.gates_kernel, D + H, 2 * H);
  CMatMap<T> cand_kernel(w.candidate_kernel, D + H, H);

  const Mat<T> W_x = detail::gru_W_x(w, D, H);
  RowVec<T> bias(G);
  bias << CRowMap<T>(w.gates_bias, 2 * H), CRowMap<T>(w.candidate_bias, H);
  const bool gather_per_step = in.ids != nullptr;  // token ids: see gather_step_inputs
  if (!gather_per_step) project_inputs(MatMap<T>(gates, rows, G), in, rows, W_x, bias);

  MatMap<T> h(h_final, B, H);
  h = CMatMap<T>(h0, B, H);
  Mat<T> rh(B, H);
  const PackedRhs<T> W_gh(gates_kernel.bottomRows(H), rows);  // packed once, used at every step
  const PackedRhs<T> W_ch(cand_kernel.bottomRows(H), rows);
  const Activation act = cfg.activation;

  // Batch rows [b0, b0 + n) through every step (see batch_blocks).
  auto run_rows = [&](Index b0, Index n) {
    for (Index t = 0; t < seq.T; ++t) {
      StepMap<T> zt = seq.step(gates, t, G);
      StepMap<T> out = seq.step(outputs, t, H);
      if (gather_per_step) gather_step_inputs(zt.middleRows(b0, n), in, seq, t, b0, W_x, bias);
      gemm(zt.leftCols(2 * H).middleRows(b0, n), h.middleRows(b0, n), W_gh, /*accumulate=*/true);

      // The candidate's matmul needs r ⊙ h, so TF's GRU takes two passes per
      // step: the gates first, then (after that GEMM) the candidate and h'.
      // The first also records the step's h_prev and r ⊙ h on the tape.
      parallel_for(n, worth_parallel(n, 2 * H), [&](Index i) {
        const Index b = b0 + i;
        if (training) seq.step(tape.h_prev, t, H).row(b) = h.row(b);
        T* zb = &zt(b, 0);
        if (!active(sequence_length, t, b)) {
          // Zero keeps the padded rows of the tape finite: backward multiplies
          // them by zero gradients in the weight GEMMs.
          rh.row(b).setZero();
        } else {
          for (Index k0 = 0; k0 < 2 * H; k0 += kChunk<T>) {  // r | u side by side: one pass
            const RowChunk<T> at(k0, 2 * H);
            at.store(at.load(zb).logistic(), zb);
          }
          T* rhb = &rh(b, 0);
          const T* hb = &h(b, 0);
          for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
            const RowChunk<T> at(k0, H);
            at.store(at.load(zb) * at.load(hb), rhb);
          }
        }
        if (training) seq.step(tape.rh, t, H).row(b) = rh.row(b);
      });
      gemm(zt.rightCols(H).middleRows(b0, n), rh.middleRows(b0, n), W_ch, /*accumulate=*/true);

      parallel_for(n, worth_parallel(n, H), [&](Index i) {
        const Index b = b0 + i;
        if (!active(sequence_length, t, b)) {
          out.row(b).setZero();
          return;
        }
        T* zb = &zt(b, 0);
        const T* mask = state_mask.data ? state_mask.row(seq, t, b, H) : nullptr;
        T *hb = &h(b, 0), *ob = &out(b, 0);
        for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
          const RowChunk<T> at(k0, H);
          Chunk<T> cand = at.load(zb + 2 * H);
          activate_inplace(cand, act);
          at.store(cand, zb + 2 * H);
          const Chunk<T> u = at.load(zb + H), h_new = u * at.load(hb) + (T(1) - u) * cand;
          at.store(h_new, ob);
          at.store(mask ? Chunk<T>(h_new * at.load(mask)) : h_new, hb);
        }
      });
    }
  };
  const BatchBlocks blocks = batch_blocks(B, Index(sizeof(T)) * 3 * H * H);
  parallel_for(blocks.count, blocks.count > 1, [&](Index i) { run_rows(blocks.begin(i), blocks.rows(i)); });
}

// d_outputs: [rows, H]; dh_final: [B, H] -> dx: [rows, D] (may be null); dh0: [B, H]; grads.
// in and the weights are those given to forward (dx stays unset for ids); the tape is spent afterwards.
template <typename T>
void gru_backward(const GruConfig& cfg, const GruWeights<T>& w, const SeqLayout& seq, const SeqInput<T>& in,
                  const int32_t* sequence_length, const StateMask<T>& state_mask, const GruTape<T>& tape, const T* d_outputs,
                  const T* dh_final, T* dx, T* dh0, const GruGrads<T>& grads) {
  const Index D = cfg.D, H = cfg.H, G = 3 * H, B = seq.B, rows = seq.rows();
  CMatMap<T> gates_kernel(w.gates_kernel, D + H, 2 * H);
  CMatMap<T> cand_kernel(w.candidate_kernel, D + H, H);
  const PackedRhs<T> W_gh_t(gates_kernel.bottomRows(H).transpose(), rows);
  const PackedRhs<T> W_ch_t(cand_kernel.bottomRows(H).transpose(), rows);
  const Activation act = cfg.activation;

  // dh: gradient w.r.t. the state entering the step being processed; padded
  // steps carry it through untouched, as forward carries the state.
  MatMap<T> dh(dh0, B, H);
  dh = CMatMap<T>(dh_final, B, H);
  Mat<T> d_rh(B, H), dh_rec(B, H);

  // Batch rows [b0, b0 + n) back through every step (see batch_blocks).
  auto run_rows = [&](Index b0, Index n) {
    for (Index t = seq.T - 1; t >= 0; --t) {
      StepMap<T> dz = seq.step(tape.gates, t, G);  // r, u, c in; d(pre-activations) out
      CStepMap<T> d_out = seq.step(d_outputs, t, H);
      CStepMap<T> h_prev = seq.step(static_cast<const T*>(tape.h_prev), t, H);

      // Pass 1: through h' = u ⊙ h + (1 - u) ⊙ c and the candidate's activation.
      parallel_for(n, worth_parallel(n, G), [&](Index i) {
        const Index b = b0 + i;
        detail::add_recurrent_grad(dh, dh_rec, seq, sequence_length, t + 1, b);
        T* zb = &dz(b, 0);
        if (!active(sequence_length, t, b)) {
          std::fill(zb, zb + G, T(0));
          return;
        }
        const T* mask = state_mask.data ? state_mask.row(seq, t, b, H) : nullptr;
        T* dhb = &dh(b, 0);
        const T *ob = d_out.row(b).data(), *hp = h_prev.row(b).data();
        for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
          const RowChunk<T> at(k0, H);
          const Chunk<T> g = step_state_grad(at, dhb, mask, ob), u = at.load(zb + H), c = at.load(zb + 2 * H);
          Chunk<T> grad;
          activation_grad(grad, c, act);
          at.store(g * (at.load(hp) - c) * u * (T(1) - u), zb + H);
          at.store(g * (T(1) - u) * grad, zb + 2 * H);
          at.store(g * u, dhb);
        }
      });
      gemm(d_rh.middleRows(b0, n), dz.rightCols(H).middleRows(b0, n), W_ch_t);

      // Pass 2: through r ⊙ h and σ of the reset gate.
      parallel_for(n, worth_parallel(n, H), [&](Index i) {
        const Index b = b0 + i;
        if (!active(sequence_length, t, b)) return;
        T *zb = &dz(b, 0), *dhb = &dh(b, 0);
        const T *drh = &d_rh(b, 0), *hp = h_prev.row(b).data();
        for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
          const RowChunk<T> at(k0, H);
          const Chunk<T> r = at.load(zb), d = at.load(drh);
          at.store(d * at.load(hp) * r * (T(1) - r), zb);
          at.store(at.load(dhb) + d * r, dhb);
        }
      });
      gemm(dh_rec.middleRows(b0, n), dz.leftCols(2 * H).middleRows(b0, n), W_gh_t);
    }
    for (Index b = b0; b < b0 + n; ++b) detail::add_recurrent_grad(dh, dh_rec, seq, sequence_length, 0, b);
  };
  const Index weight_bytes = Index(sizeof(T)) * 3 * H * H;
  const BatchBlocks blocks = batch_blocks(B, weight_bytes);
  parallel_for(blocks.count, blocks.count > 1, [&](Index i) { run_rows(blocks.begin(i), blocks.rows(i)); });

  // Weight gradients and dx: one GEMM each over the rows of each group (see
  // grad_blocks).
  const Mat<T> W_x = dx != nullptr ? detail::gru_W_x(w, D, H) : Mat<T>(0, G);  // for dx only
  sum_row_groups<T, 4>(grad_blocks(seq, weight_bytes), seq.T,
                       {grads.gates_kernel, grads.candidate_kernel, grads.gates_bias, grads.candidate_bias},
                       {(D + H) * 2 * H, (D + H) * H, 2 * H, H}, [&](Index r0, Index n, const std::array<T*, 4>& d) {
                         const SeqInput<T> in_g = in.from_row(r0);
                         CMatMap<T> d_z(tape.gates + r0 * G, n, G);
                         MatMap<T> d_gates_kernel(d[0], D + H, 2 * H);
                         MatMap<T> d_cand_kernel(d[1], D + H, H);
                         {
                           Mat<T> dW_x(D, G);
                           input_weight_grad(dW_x, in_g, n, d_z);
                           d_gates_kernel.topRows(D) = dW_x.leftCols(2 * H);
                           d_cand_kernel.topRows(D) = dW_x.rightCols(H);
                         }
                         gemm(d_gates_kernel.bottomRows(H), CMatMap<T>(tape.h_prev + r0 * H, n, H).transpose(),
                              d_z.leftCols(2 * H));
                         gemm(d_cand_kernel.bottomRows(H), CMatMap<T>(tape.rh + r0 * H, n, H).transpose(),
                              d_z.rightCols(H));
                         RowVec<T> d_bias(G);
                         bias_grad(d_z, n, d_bias.data());
                         RowMap<T>(d[2], 2 * H) = d_bias.leftCols(2 * H);
                         RowMap<T>(d[3], H) = d_bias.rightCols(H);
                         input_grad(dx ? dx + r0 * D : nullptr, in_g, n, d_z, W_x);
                       });
}

// ---- reset after (PyTorch / Keras 3 / cuDNN) -----------------------------------

template <typename T>
struct GruResetAfterWeights {
  const T* gates_kernel = nullptr;             // [D + H, 2H]: rows [0, D) act on x, [D, D+H) on h; columns r | u
  const T* gates_bias = nullptr;               // [2H]
  const T* candidate_input_kernel = nullptr;   // [D, H]
  const T* candidate_input_bias = nullptr;     // [H]
  const T* candidate_hidden_kernel = nullptr;  // [H, H]
  const T* candidate_hidden_bias = nullptr;    // [H]
};

template <typename T>
struct GruResetAfterGrads {
  T* gates_kernel = nullptr;             // [D + H, 2H]
  T* gates_bias = nullptr;               // [2H]
  T* candidate_input_kernel = nullptr;   // [D, H]
  T* candidate_input_bias = nullptr;     // [H]
  T* candidate_hidden_kernel = nullptr;  // [H, H]
  T* candidate_hidden_bias = nullptr;    // [H]
};

// The gate buffer's columns are ordered c | r | u | hn (hn = h · W_ch + b_ch)
// so that both fused matrices see one contiguous window of it: the x side
// (c, r, u: columns [0, 3H)) and the h side (r, u, hn: columns [H, 4H)). Each
// step is then one recurrent GEMM into the window [H, 4H), and after the
// backward loop dW_x, dW_h and dx are one GEMM each.
template <typename T>
struct GruResetAfterTape {
  T* gates = nullptr;   // [rows, 4H] c | r | u (activated) | hn; backward: d(pre-activations) | d hn
  T* h_prev = nullptr;  // [rows, H] recurrent input of step t
};

namespace detail {
// [D, 3H] = [candidate/input/kernel | gates/kernel's x rows]: the x side, columns c | r | u.
template <typename T>
Mat<T> reset_after_W_x(const GruResetAfterWeights<T>& w, Index D, Index H) {
  Mat<T> W_x(D, 3 * H);
  W_x << CMatMap<T>(w.candidate_input_kernel, D, H), CMatMap<T>(w.gates_kernel, D + H, 2 * H).topRows(D);
  return W_x;
}
// [H, 3H] = [gates/kernel's h rows | candidate/hidden/kernel]: the h side, columns r | u | hn.
template <typename T>
Mat<T> reset_after_W_h(const GruResetAfterWeights<T>& w, Index D, Index H) {
  Mat<T> W_h(H, 3 * H);
  W_h << CMatMap<T>(w.gates_kernel, D + H, 2 * H).bottomRows(H), CMatMap<T>(w.candidate_hidden_kernel, H, H);
  return W_h;
}
}  // namespace detail

// in: x [rows, D] or ids [rows]; sequence_length: [B] or null; h0: [B, H]
// outputs: [rows, H] (zero on padded steps); h_final: [B, H]
// gates_ws: [rows, 4H] scratch used when tape.gates is null.
template <typename T>
void gru_reset_after_forward(const GruConfig& cfg, const GruResetAfterWeights<T>& w, const SeqLayout& seq,
                             const SeqInput<T>& in, const int32_t* sequence_length,
                             const StateMask<T>& state_mask, const T* h0, T* outputs,
                             T* h_final, const GruResetAfterTape<T>& tape, T* gates_ws) {
  const Index D = cfg.D, H = cfg.H, G = 4 * H, B = seq.B, rows = seq.rows();
  const bool training = tape.gates != nullptr;
  T* gates = training ? tape.gates : gates_ws;

  RowVec<T> input_bias(3 * H);  // columns as in reset_after_W_x
  input_bias << CRowMap<T>(w.candidate_input_bias, H), CRowMap<T>(w.gates_bias, 2 * H);
  const Mat<T> W_x = detail::reset_after_W_x(w, D, H);
  const CRowMap<T> hidden_bias(w.candidate_hidden_bias, H);  // hn starts at b_ch: no x part
  const bool gather_per_step = in.ids != nullptr;  // token ids: see gather_step_inputs
  if (!gather_per_step) {
    MatMap<T> z(gates, rows, G);
    project_inputs(z.leftCols(3 * H), in, rows, W_x, input_bias);
    z.rightCols(H) = hidden_bias.replicate(rows, 1);
  }

  MatMap<T> h(h_final, B, H);
  h = CMatMap<T>(h0, B, H);
  const Mat<T> W_h_dense = detail::reset_after_W_h(w, D, H);
  const PackedRhs<T> W_h(W_h_dense, rows);
  const Activation act = cfg.activation;

  // Batch rows [b0, b0 + n) through every step (see batch_blocks).
  auto run_rows = [&](Index b0, Index n) {
    for (Index t = 0; t < seq.T; ++t) {
      StepMap<T> zt = seq.step(gates, t, G);
      StepMap<T> out = seq.step(outputs, t, H);
      if (gather_per_step) {
        gather_step_inputs(zt.leftCols(3 * H).middleRows(b0, n), in, seq, t, b0, W_x, input_bias);
        zt.rightCols(H).middleRows(b0, n) = hidden_bias.replicate(n, 1);
      }
      gemm(zt.rightCols(3 * H).middleRows(b0, n), h.middleRows(b0, n), W_h, /*accumulate=*/true);

      parallel_for(n, worth_parallel(n, G), [&](Index i) {
        const Index b = b0 + i;
        if (training) seq.step(tape.h_prev, t, H).row(b) = h.row(b);  // the state this step started from
        if (!active(sequence_length, t, b)) {
          out.row(b).setZero();
          return;
        }
        T* zb = &zt(b, 0);
        const T* mask = state_mask.data ? state_mask.row(seq, t, b, H) : nullptr;
        for (Index k0 = 0; k0 < 2 * H; k0 += kChunk<T>) {  // r | u
          const RowChunk<T> at(k0, 2 * H);
          at.store(at.load(zb + H).logistic(), zb + H);
        }
        for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
          const RowChunk<T> at(k0, H);
          Chunk<T> cand = at.load(zb) + at.load(zb + H) * at.load(zb + 3 * H);  // x side + r ⊙ hn
          activate_inplace(cand, act);
          at.store(cand, zb);
        }
        T *hb = &h(b, 0), *ob = &out(b, 0);
        for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
          const RowChunk<T> at(k0, H);
          const Chunk<T> u = at.load(zb + 2 * H), h_new = u * at.load(hb) + (T(1) - u) * at.load(zb);
          at.store(h_new, ob);
          at.store(mask ? Chunk<T>(h_new * at.load(mask)) : h_new, hb);
        }
      });
    }
  };
  const BatchBlocks blocks = batch_blocks(B, Index(sizeof(T)) * 3 * H * H);
  parallel_for(blocks.count, blocks.count > 1, [&](Index i) { run_rows(blocks.begin(i), blocks.rows(i)); });
}

// d_outputs: [rows, H]; dh_final: [B, H] -> dx: [rows, D] (may be null); dh0: [B, H]; grads.
// in and the weights are those given to forward (dx stays unset for ids); the tape is spent afterwards.
template <typename T>
void gru_reset_after_backward(const GruConfig& cfg, const GruResetAfterWeights<T>& w, const SeqLayout& seq,
                              const SeqInput<T>& in, const int32_t* sequence_length,
                              const StateMask<T>& state_mask, const GruResetAfterTape<T>& tape, const T* d_outputs, const T* dh_final,
                              T* dx, T* dh0, const GruResetAfterGrads<T>& grads) {
  const Index D = cfg.D, H = cfg.H, G = 4 * H, B = seq.B, rows = seq.rows();
  const Mat<T> W_h_dense = detail::reset_after_W_h(w, D, H);
  const PackedRhs<T> W_h_t(W_h_dense.transpose(), rows);
  const Activation act = cfg.activation;

  MatMap<T> dh(dh0, B, H);
  dh = CMatMap<T>(dh_final, B, H);
  Mat<T> dh_rec(B, H);

  // Batch rows [b0, b0 + n) back through every step (see batch_blocks).
  auto run_rows = [&](Index b0, Index n) {
    for (Index t = seq.T - 1; t >= 0; --t) {
      StepMap<T> dz = seq.step(tape.gates, t, G);  // c, r, u, hn in; their gradients out
      CStepMap<T> d_out = seq.step(d_outputs, t, H);
      CStepMap<T> h_prev = seq.step(static_cast<const T*>(tape.h_prev), t, H);

      parallel_for(n, worth_parallel(n, G), [&](Index i) {
        const Index b = b0 + i;
        detail::add_recurrent_grad(dh, dh_rec, seq, sequence_length, t + 1, b);
        T* zb = &dz(b, 0);
        if (!active(sequence_length, t, b)) {
          std::fill(zb, zb + G, T(0));
          return;
        }
        const T* mask = state_mask.data ? state_mask.row(seq, t, b, H) : nullptr;
        T* dhb = &dh(b, 0);
        const T *ob = d_out.row(b).data(), *hp = h_prev.row(b).data();
        for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
          const RowChunk<T> at(k0, H);
          const Chunk<T> g = step_state_grad(at, dhb, mask, ob);
          const Chunk<T> c = at.load(zb), r = at.load(zb + H), u = at.load(zb + 2 * H), hn = at.load(zb + 3 * H);
          Chunk<T> d_zc;
          activation_grad(d_zc, c, act);
          d_zc = g * (T(1) - u) * d_zc;
          at.store(d_zc, zb);
          at.store(d_zc * hn * r * (T(1) - r), zb + H);
          at.store(g * (at.load(hp) - c) * u * (T(1) - u), zb + 2 * H);
          at.store(d_zc * r, zb + 3 * H);
          at.store(g * u, dhb);
        }
      });
      gemm(dh_rec.middleRows(b0, n), dz.rightCols(3 * H).middleRows(b0, n), W_h_t);
    }
    for (Index b = b0; b < b0 + n; ++b) detail::add_recurrent_grad(dh, dh_rec, seq, sequence_length, 0, b);
  };
  const Index weight_bytes = Index(sizeof(T)) * 3 * H * H;
  const BatchBlocks blocks = batch_blocks(B, weight_bytes);
  parallel_for(blocks.count, blocks.count > 1, [&](Index i) { run_rows(blocks.begin(i), blocks.rows(i)); });

  // Weight gradients and dx: one GEMM each over the rows of each group (see
  // grad_blocks), then split by variable.
  const Mat<T> W_x = dx != nullptr ? detail::reset_after_W_x(w, D, H) : Mat<T>(0, 3 * H);  // for dx only
  sum_row_groups<T, 6>(grad_blocks(seq, weight_bytes), seq.T,
                       {grads.gates_kernel, grads.candidate_input_kernel, grads.candidate_hidden_kernel,
                        grads.candidate_input_bias, grads.gates_bias, grads.candidate_hidden_bias},
                       {(D + H) * 2 * H, D * H, H * H, H, 2 * H, H}, [&](Index r0, Index n, const std::array<T*, 6>& d) {
                         const SeqInput<T> in_g = in.from_row(r0);
                         CMatMap<T> d_z(tape.gates + r0 * G, n, G);
                         MatMap<T> d_gates_kernel(d[0], D + H, 2 * H);
                         {
                           Mat<T> dW_x(D, 3 * H);  // columns c | r | u
                           input_weight_grad(dW_x, in_g, n, d_z.leftCols(3 * H));
                           MatMap<T>(d[1], D, H) = dW_x.leftCols(H);
                           d_gates_kernel.topRows(D) = dW_x.rightCols(2 * H);
                         }
                         Mat<T> dW_h(H, 3 * H);  // columns r | u | hn
                         gemm(dW_h, CMatMap<T>(tape.h_prev + r0 * H, n, H).transpose(), d_z.rightCols(3 * H));
                         d_gates_kernel.bottomRows(H) = dW_h.leftCols(2 * H);
                         MatMap<T>(d[2], H, H) = dW_h.rightCols(H);
                         RowVec<T> d_bias(G);
                         bias_grad(d_z, n, d_bias.data());
                         RowMap<T>(d[3], H) = d_bias.leftCols(H);
                         RowMap<T>(d[4], 2 * H) = d_bias.middleCols(H, 2 * H);
                         RowMap<T>(d[5], H) = d_bias.rightCols(H);
                         input_grad(dx ? dx + r0 * D : nullptr, in_g, n, d_z.leftCols(3 * H), W_x);
                       });
}

}  // namespace rnnkit
