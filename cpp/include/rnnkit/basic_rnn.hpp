// Vanilla RNN over a whole sequence: TF1's BasicRNNCell.
//   h = act(x W_x + h_prev W_h + b)
// basic_rnn_forward / basic_rnn_backward are a pair; the tape's `h` buffer is
// overwritten in place with d(pre-activation) by backward.
#pragma once

#include "rnnkit/inputs.hpp"
#include "rnnkit/rowmath.hpp"

namespace rnnkit {

struct BasicRnnConfig {
  Index D = 0, H = 0;
  Activation activation = Activation::Tanh;
};

template <typename T>
struct BasicRnnTape {
  T* h = nullptr;       // [rows, H] act(z) of step t; backward: d z
  T* h_prev = nullptr;  // [rows, H] recurrent input of step t
};

// in: x [rows, D] or ids [rows]; kernel: [D + H, H]; bias: [H]; h0: [B, H]
// outputs: [rows, H] (zero on padded steps); h_final: [B, H]; z_ws: [rows, H] scratch
template <typename T>
void basic_rnn_forward(const BasicRnnConfig& cfg, const T* kernel_data, const T* bias_data,
                       const SeqLayout& seq, const SeqInput<T>& in, const int32_t* sequence_length,
                       const StateMask<T>& state_mask, const T* h0,
                       T* outputs, T* h_final, const BasicRnnTape<T>& tape, T* z_ws) {
  const Index D = cfg.D, H = cfg.H, B = seq.B;
  const bool training = tape.h != nullptr;
  T* z_all = training ? tape.h : z_ws;
  CMatMap<T> kernel(kernel_data, D + H, H);
  const auto W_x = kernel.topRows(D);
  const CRowMap<T> bias(bias_data, H);
  const bool gather_per_step = in.ids != nullptr;  // token ids: see gather_step_inputs
  if (!gather_per_step) project_inputs(MatMap<T>(z_all, seq.rows(), H), in, seq.rows(), W_x, bias);

  MatMap<T> h(h_final, B, H);
  h = CMatMap<T>(h0, B, H);
  const auto W_h = kernel.bottomRows(H);
  const PackedRhs<T> W_h_packed(W_h, seq.rows());  // packed once, used at every step
  const Activation act = cfg.activation;
  // Batch rows [b0, b0 + n) through every step (see batch_blocks).
  auto run_rows = [&](Index b0, Index n) {
    for (Index t = 0; t < seq.T; ++t) {
      auto zt = seq.step(z_all, t, H).middleRows(b0, n);
      auto out = seq.step(outputs, t, H).middleRows(b0, n);
      if (gather_per_step) gather_step_inputs(zt, in, seq, t, b0, W_x, bias);
      gemm(zt, h.middleRows(b0, n), W_h_packed, /*accumulate=*/true);
      // One pass per row: record the state this step started from, then move it on.
      parallel_for(n, worth_parallel(n, H), [&](Index i) {
        const Index b = b0 + i;
        if (training) seq.step(tape.h_prev, t, H).row(b) = h.row(b);
        if (!active(sequence_length, t, b)) {
          out.row(i).setZero();
          return;
        }
        T *zb = &zt(i, 0), *ob = &out(i, 0), *hb = &h(b, 0);
        const T* mask = state_mask.data ? state_mask.row(seq, t, b, H) : nullptr;
        for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
          const RowChunk<T> at(k0, H);
          Chunk<T> y = at.load(zb);
          activate_inplace(y, act);
          at.store(y, zb);
          at.store(y, ob);
          if (mask) y *= at.load(mask);
          at.store(y, hb);
        }
      });
    }
  };
  const BatchBlocks blocks = batch_blocks(B, Index(sizeof(T)) * H * H);
  parallel_for(blocks.count, blocks.count > 1, [&](Index i) { run_rows(blocks.begin(i), blocks.rows(i)); });
}

// d_outputs: [rows, H]; dh_final: [B, H] -> dx: [rows, D] (may be null); dh0: [B, H];
// d_kernel: [D + H, H]; d_bias: [H]
template <typename T>
void basic_rnn_backward(const BasicRnnConfig& cfg, const T* kernel_data, const SeqLayout& seq,
                        const SeqInput<T>& in, const int32_t* sequence_length,
                        const StateMask<T>& state_mask, const BasicRnnTape<T>& tape,
                        const T* d_outputs, const T* dh_final, T* dx, T* dh0, T* d_kernel,
                        T* d_bias) {
  const Index D = cfg.D, H = cfg.H, B = seq.B;
  CMatMap<T> kernel(kernel_data, D + H, H);
  const auto W_h = kernel.bottomRows(H);
  const PackedRhs<T> W_h_t_packed(W_h.transpose(), seq.rows());
  MatMap<T> dh(dh0, B, H);
  dh = CMatMap<T>(dh_final, B, H);
  Mat<T> dh_rec(B, H);
  const Activation act = cfg.activation;

  // d h_prev of step t + 1 (dh_rec) becomes d h for its live rows.
  auto take_recurrent_grad = [&](Index t_next, Index b) {
    if (t_next < seq.T && active(sequence_length, t_next, b)) dh.row(b) = dh_rec.row(b);
  };
  // Batch rows [b0, b0 + n) back through every step (see batch_blocks).
  auto run_rows = [&](Index b0, Index n) {
    for (Index t = seq.T - 1; t >= 0; --t) {
      auto dz = seq.step(tape.h, t, H).middleRows(b0, n);  // h in, d z out
      CStepMap<T> d_out = seq.step(d_outputs, t, H);
      parallel_for(n, worth_parallel(n, H), [&](Index i) {
        const Index b = b0 + i;
        take_recurrent_grad(t + 1, b);
        T* zb = &dz(i, 0);
        if (!active(sequence_length, t, b)) {
          std::fill(zb, zb + H, T(0));
          return;
        }
        const T* mask = state_mask.data ? state_mask.row(seq, t, b, H) : nullptr;
        const T *db = &dh(b, 0), *ob = d_out.row(b).data();
        for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
          const RowChunk<T> at(k0, H);
          Chunk<T> grad;
          activation_grad(grad, at.load(zb), act);
          at.store(step_state_grad(at, db, mask, ob) * grad, zb);
        }
      });
      gemm(dh_rec.middleRows(b0, n), dz, W_h_t_packed);
    }
    for (Index b = b0; b < b0 + n; ++b) take_recurrent_grad(0, b);
  };
  const Index weight_bytes = Index(sizeof(T)) * H * H;
  const BatchBlocks blocks = batch_blocks(B, weight_bytes);
  parallel_for(blocks.count, blocks.count > 1, [&](Index i) { run_rows(blocks.begin(i), blocks.rows(i)); });

  // Weight gradients: one GEMM each over the rows of each group (see
  // grad_blocks), and the input gradient of those rows.
  sum_row_groups<T, 2>(grad_blocks(seq, weight_bytes), seq.T, {d_kernel, d_bias}, {(D + H) * H, H},
                       [&](Index r0, Index n, const std::array<T*, 2>& d) {
                         const SeqInput<T> in_g = in.from_row(r0);
                         CMatMap<T> d_z(tape.h + r0 * H, n, H);
                         MatMap<T> dk(d[0], D + H, H);
                         kernel_grad(dk, in_g, n, tape.h_prev + r0 * H, d_z, d[1]);
                         input_grad(dx ? dx + r0 * D : nullptr, in_g, n, d_z, kernel.topRows(D));
                       });
}

}  // namespace rnnkit
