// LSTM over a whole sequence: TF1's BasicLSTMCell and LSTMCell (peepholes,
// cell_clip, num_proj, proj_clip). lstm_forward / lstm_backward are a pair;
// forward fills an LstmTape when training and backward consumes it (the gate
// buffer is overwritten in place with the gate gradients).
//
// Per step:   z = x W_x + m_prev W_h + b              -> i, j, f, o
//             c = σ(f + fb [+ w_f ⊙ c_prev]) ⊙ c_prev + σ(i [+ w_i ⊙ c_prev]) ⊙ act(j)
//             c = clip(c, ±cell_clip)
//             m = σ(o [+ w_o ⊙ c]) ⊙ act(c);  m = clip(m P, ±proj_clip)
// The x W_x half of z is one GEMM over all T*B rows before the loop (for token
// ids, a row gather at each step instead); each step adds only m_prev W_h and
// makes one fused pass over the [B, 4H] tile. Threads split a step by the
// product's columns and then the pass's rows, or (large steps) each takes
// its own hidden units for both (detail::lstm_forward_by_units).
#pragma once

#include "rnnkit/cell.hpp"

#include <memory>
#include <optional>

namespace rnnkit {

struct LstmConfig {
  Index D = 0, H = 0, P = 0;  // P = 0: no projection
  double forget_bias = 1.0;
  double cell_clip = 0.0;  // <= 0: off
  double proj_clip = 0.0;  // <= 0: off
  bool peepholes = false;
  Activation activation = Activation::Tanh;

  Index R() const { return P > 0 ? P : H; }  // width of m, the recurrent state
  Index G() const { return 4 * H; }
};

template <typename T>
struct LstmWeights {
  const T* kernel = nullptr;      // [D + R, 4H]: rows [0, D) act on x, [D, D+R) on m_prev
  const T* bias = nullptr;        // [4H]
  const T* w_i_diag = nullptr;    // [H] (peepholes only)
  const T* w_f_diag = nullptr;    // [H]
  const T* w_o_diag = nullptr;    // [H]
  const T* projection = nullptr;  // [H, P] (num_proj only)
};

template <typename T>
struct LstmGrads {
  T* kernel = nullptr;      // [D + R, 4H]
  T* bias = nullptr;        // [4H]
  T* w_i_diag = nullptr;    // [H]
  T* w_f_diag = nullptr;    // [H]
  T* w_o_diag = nullptr;    // [H]
  T* projection = nullptr;  // [H, P]
};

// What backward needs, all [rows, *] in the sequence's own order.
// Buffers are owned by the caller; null pointers mean inference (no tape).
template <typename T>
struct LstmTape {
  T* gates = nullptr;   // [rows, 4H] activated i, j, f, o; backward: d(pre-activation)
  T* c = nullptr;       // [rows, H]  cell state after step t (carried on padded steps)
  T* m_prev = nullptr;  // [rows, R]  recurrent input of step t
  T* m_pre = nullptr;   // [rows, H]  o ⊙ act(c) before projection (num_proj only)
  T* m_raw = nullptr;   // [rows, P]  m P before proj_clip (num_proj only);
                        //            backward overwrites it with d(m P)
};

namespace detail {

// Units [k_begin, k_end) of one row of a step, fused, chunk by chunk
// (RowChunk: address-independent packet code, no scratch copies). z: the
// row's [4H] pre-activations in, activated i, j, f, o out; c: [H] c_prev in,
// c out; m: [H] o ⊙ act(c) out. k_begin is a multiple of kChunk and k_end one
// too or H, so a slice of a row meets the same chunks as the whole row; one
// compiled body (noinline) serves every caller, so they round alike.
template <typename T>
[[gnu::noinline]] void lstm_units_forward(const LstmConfig& cfg, const LstmWeights<T>& w, T* z, T* c, T* m,
                                          Index k_begin, Index k_end) {
  const Index H = cfg.H;
  const Activation act = cfg.activation;
  const T forget_bias = T(cfg.forget_bias), clip = T(cfg.cell_clip);
  for (Index k0 = k_begin; k0 < k_end; k0 += kChunk<T>) {
    const RowChunk<T> at(k0, k_end);
    Chunk<T> i = at.load(z), j = at.load(z + H), f = at.load(z + 2 * H), o = at.load(z + 3 * H);
    const Chunk<T> c_prev = at.load(c);
    if (cfg.peepholes) {
      i += at.load(w.w_i_diag) * c_prev;
      f += at.load(w.w_f_diag) * c_prev;
    }
    i = i.logistic();
    activate_inplace(j, act);
    f = (f + forget_bias).logistic();
    Chunk<T> c_new = f * c_prev + i * j;
    if (cfg.cell_clip > 0) c_new = c_new.max(-clip).min(clip);
    if (cfg.peepholes) o += at.load(w.w_o_diag) * c_new;
    o = o.logistic();
    Chunk<T> m_new = c_new;
    activate_inplace(m_new, act);
    m_new *= o;
    at.store(i, z);
    at.store(j, z + H);
    at.store(f, z + 2 * H);
    at.store(o, z + 3 * H);
    at.store(c_new, c);
    at.store(m_new, m);
  }
}

// One row of the backward step. z: [4H] activated i, j, f, o in, d of their
// pre-activations out; c, c_prev: [H] from the tape; dm: [H] d m (before the
// projection); dc: [H] d c in, d c_prev out.
template <typename T>
void lstm_row_backward(const LstmConfig& cfg, const LstmWeights<T>& w, T* z, const T* c, const T* c_prev,
                       const T* dm, T* dc) {
  const Index H = cfg.H;
  const Activation act = cfg.activation;
  const T clip = T(cfg.cell_clip);
  for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
    const RowChunk<T> at(k0, H);
    Chunk<T> i = at.load(z), j = at.load(z + H), f = at.load(z + 2 * H), o = at.load(z + 3 * H);
    const Chunk<T> cp = at.load(c_prev), d_m = at.load(dm);
    Chunk<T> ac = at.load(c), d_c = at.load(dc), g;
    activate_inplace(ac, act);
    // through m = o ⊙ act(c)
    activation_grad(g, ac, act);
    d_c += d_m * o * g;
    o = d_m * ac * o * (T(1) - o);  // o: d(o pre-activation)
    if (cfg.peepholes) d_c += o * at.load(w.w_o_diag);
    if (cfg.cell_clip > 0) {  // clip_by_value passes the gradient where -clip <= c <= clip
      g = f * cp + i * j;
      d_c *= ((g >= -clip) && (g <= clip)).template cast<T>();
    }
    // through c = f ⊙ c_prev + i ⊙ act(j)
    Chunk<T> d_cp = d_c * f;
    f = d_c * cp * f * (T(1) - f);  // f: d(f pre-activation)
    activation_grad(g, j, act);
    g = d_c * i * g;                // d(j pre-activation)
    i = d_c * j * i * (T(1) - i);   // i: d(i pre-activation)
    if (cfg.peepholes) d_cp += i * at.load(w.w_i_diag) + f * at.load(w.w_f_diag);
    at.store(i, z);
    at.store(g, z + H);
    at.store(f, z + 2 * H);
    at.store(o, z + 3 * H);
    at.store(d_cp, dc);
  }
}

#if RNNKIT_PACKED_GEMM
// The steps of lstm_forward split by hidden units rather than by the columns
// of one product and then the rows of a gate pass: each thread owns units
// [k_begin, k_end) (whole 32-column panels) and at every step multiplies
// m_prev by its columns of all four gates (W_h packed gate by gate), runs
// the gate pass over its units of every row while that slice of z is still
// in its cache, and meets the other threads once, before the next step reads
// the whole new m. m is double-buffered, since a thread still multiplying by
// m_prev must not see it change. No projection (m would need every unit).
// Every element is summed and activated as in the row-split loop, so the
// results are the same bits.
inline void lstm_forward_by_units(const LstmConfig& cfg, const LstmWeights<float>& w, const SeqLayout& seq,
                                  const SeqInput<float>& in, const int32_t* sequence_length,
                                  const StateMask<float>& state_mask, float* gates, float* outputs, float* c_cur,
                                  float* m_final, const LstmTape<float>& tape) {
  const Index D = cfg.D, H = cfg.H, G = cfg.G(), B = seq.B;
  const bool training = tape.gates != nullptr;
  CMatMap<float> kernel(w.kernel, D + H, G);
  const auto W_x = kernel.topRows(D);
  const auto W_h = kernel.bottomRows(H);
  CRowMap<float> bias(w.bias, G);
  static_assert(packed::kPanel % kChunk<float> == 0, "a thread's units must start on a gate-pass chunk");
  std::vector<PackedRhs<float>> W_h_gates;  // columns of gate g: W_h[:, gH, (g + 1)H)
  W_h_gates.reserve(4);
  for (Index g = 0; g < 4; ++g) W_h_gates.emplace_back(W_h.middleCols(g * H, H), seq.rows());
  Mat<float> m_other(B, H);
  float* m_bufs[2] = {m_final, m_other.data()};  // step t reads m_bufs[t % 2], writes the other

  const Index unit_blocks = (H + packed::kPanel - 1) / packed::kPanel;
  parallel_steps(unit_blocks, seq.T, gemm_worth_parallel(B, G, H), [&](Index t, Index u0, Index u1) {
    const Index k_begin = u0 * packed::kPanel, k_end = std::min(H, u1 * packed::kPanel), width = k_end - k_begin;
    StepMap<float> z = seq.step(gates, t, G);
    StepMap<float> out = seq.step(outputs, t, H);
    const float* m_prev = m_bufs[t % 2];
    float* m_next = m_bufs[(t + 1) % 2];
    for (Index g = 0; g < 4; ++g) {
      const Index col = g * H + k_begin;
      if (in.ids != nullptr)
        gather_step_inputs(z.middleCols(col, width), in, seq, t, 0, W_x.middleCols(col, width),
                           bias.segment(col, width));
      packed::multiply(&z(0, col), z.outerStride(), B, width, H, m_prev, H, 1,
                       W_h_gates[g].panels() + u0 * H * packed::kPanel, /*accumulate=*/true, /*parallel=*/false);
    }
    for (Index b = 0; b < B; ++b) {
      const auto units = [&](const float* rows) { return CRowMap<float>(rows + b * H + k_begin, width); };
      if (training) seq.step(tape.m_prev, t, H).row(b).segment(k_begin, width) = units(m_prev);
      RowMap<float> m_row(m_next + b * H + k_begin, width);
      if (!active(sequence_length, t, b)) {
        out.row(b).segment(k_begin, width).setZero();
        m_row = units(m_prev);
      } else {
        lstm_units_forward(cfg, w, &z(b, 0), c_cur + b * H, &out(b, 0), k_begin, k_end);
        if (state_mask.data)
          m_row = out.row(b).segment(k_begin, width).cwiseProduct(
              CRowMap<float>(state_mask.row(seq, t, b, H) + k_begin, width));
        else
          m_row = out.row(b).segment(k_begin, width);
      }
      if (training) seq.step(tape.c, t, H).row(b).segment(k_begin, width) = units(c_cur);
    }
  });
  if (seq.T % 2 == 1) MatMap<float>(m_final, B, H) = m_other;
}
#endif

}  // namespace detail

namespace detail {
// The steps of lstm_forward split by batch rows: each of `blocks` runs its
// rows through every step (per-thread blocks), or, as one block, each step's
// product splits by columns and its gate pass by rows. gates: [rows, 4H], the
// input part already in place for dense inputs (token ids are gathered at
// each step); c_final, m_final: [B, H], [B, R] holding c0, m0, then the
// final state.
template <typename T>
void lstm_forward_by_rows(const LstmConfig& cfg, const LstmWeights<T>& w, const SeqLayout& seq,
                          const SeqInput<T>& in, const int32_t* sequence_length, const StateMask<T>& state_mask,
                          T* gates, T* outputs, T* c_final, T* m_final, const LstmTape<T>& tape,
                          const BatchBlocks& blocks, const PackedRhs<T>* W_h_prepacked) {
  const Index D = cfg.D, H = cfg.H, P = cfg.P, R = cfg.R(), G = cfg.G(), B = seq.B;
  const bool training = tape.gates != nullptr;
  const bool gather_per_step = in.ids != nullptr;
  CMatMap<T> kernel(w.kernel, D + R, G);
  CRowMap<T> bias(w.bias, G);
  const auto W_x = kernel.topRows(D);
  MatMap<T> c_cur(c_final, B, H);
  MatMap<T> m_cur(m_final, B, R);
  // m before projection for the current step; with no projection it is m itself.
  Mat<T> m_pre_step(P > 0 ? B : 0, P > 0 ? H : 0);
  Mat<T> m_proj_step(P > 0 ? B : 0, P > 0 ? P : 0);
  const auto W_h = kernel.bottomRows(R);
  const PackedRhs<T> W_h_own(W_h, W_h_prepacked ? 0 : seq.rows());  // packed once, used at every step
  const PackedRhs<T>& W_h_packed = W_h_prepacked ? *W_h_prepacked : W_h_own;
  std::optional<PackedRhs<T>> proj_packed;
  if (P > 0) proj_packed.emplace(CMatMap<T>(w.projection, H, P), seq.rows());
  const T proj_clip = T(cfg.proj_clip);

  // Batch rows [b0, b0 + n) through every step (see batch_blocks).
  auto run_rows = [&](Index b0, Index n) {
    for (Index t = 0; t < seq.T; ++t) {
      auto z = seq.step(gates, t, G).middleRows(b0, n);
      auto out = seq.step(outputs, t, R).middleRows(b0, n);
      auto m_rows = m_cur.middleRows(b0, n);
      if (gather_per_step) gather_step_inputs(z, in, seq, t, b0, W_x, bias);
      gemm(z, m_rows, W_h_packed, /*accumulate=*/true);

      // One pass per row, which also records the row's m_prev and new c on the tape.
      parallel_for(n, worth_parallel(n, G), [&](Index i) {
        const Index b = b0 + i;
        if (training) seq.step(tape.m_prev, t, R).row(b) = m_cur.row(b);
        T* zb = &z(i, 0);
        if (!active(sequence_length, t, b)) {
          out.row(i).setZero();
          if (P > 0) m_pre_step.row(b).setZero();
        } else {
          T* mpre = P > 0 ? &m_pre_step(b, 0) : &out(i, 0);
          detail::lstm_units_forward(cfg, w, zb, &c_cur(b, 0), mpre, 0, H);
          if (P == 0) {
            if (state_mask.data)
              m_cur.row(b) = out.row(i).cwiseProduct(CRowMap<T>(state_mask.row(seq, t, b, R), R));
            else
              m_cur.row(b) = out.row(i);
          }
        }
        if (training) seq.step(tape.c, t, H).row(b) = c_cur.row(b);
      });

      if (P > 0) {
        auto m_proj = m_proj_step.middleRows(b0, n);
        gemm(m_proj, m_pre_step.middleRows(b0, n), *proj_packed);
        if (training) seq.step(tape.m_raw, t, P).middleRows(b0, n) = m_proj;
        for (Index i = 0; i < n; ++i) {
          const Index b = b0 + i;
          if (!active(sequence_length, t, b)) continue;
          const T* mask = state_mask.data ? state_mask.row(seq, t, b, P) : nullptr;
          for (Index k = 0; k < P; ++k) {
            const T m = proj_clip > 0 ? clip_value(m_proj(i, k), proj_clip) : m_proj(i, k);
            m_cur(b, k) = mask ? m * mask[k] : m;
            out(i, k) = m;
          }
        }
        if (training) seq.step(tape.m_pre, t, H).middleRows(b0, n) = m_pre_step.middleRows(b0, n);
      }
    }
  };
  parallel_for(blocks.count, blocks.count > 1, [&](Index i) { run_rows(blocks.begin(i), blocks.rows(i)); });
}
}  // namespace detail

// in: x [rows, D] or ids [rows]; sequence_length: [B] or null; c0: [B, H]; m0: [B, R]
// outputs: [rows, R] (zero on padded steps); c_final: [B, H]; m_final: [B, R]
// gates_ws: [rows, 4H] scratch used when tape.gates is null.
// W_h_prepacked: the kernel's recurrent rows [R, 4H] packed by the caller, or
// null to pack them here (a caller that runs many one-step calls packs once).
template <typename T>
void lstm_forward(const LstmConfig& cfg, const LstmWeights<T>& w, const SeqLayout& seq, const SeqInput<T>& in,
                  const int32_t* sequence_length, const StateMask<T>& state_mask, const T* c0, const T* m0, T* outputs, T* c_final,
                  T* m_final, const LstmTape<T>& tape, T* gates_ws, const PackedRhs<T>* W_h_prepacked = nullptr) {
  const Index D = cfg.D, H = cfg.H, P = cfg.P, R = cfg.R(), G = cfg.G(), B = seq.B;
  const bool training = tape.gates != nullptr;
  T* gates = training ? tape.gates : gates_ws;

  CMatMap<T> kernel(w.kernel, D + R, G);
  CRowMap<T> bias(w.bias, G);
  const auto W_x = kernel.topRows(D);
  const bool gather_per_step = in.ids != nullptr;  // token ids: see gather_step_inputs
  if (!gather_per_step) {
    MatMap<T> all_gates(gates, seq.rows(), G);
    project_inputs(all_gates, in, seq.rows(), W_x, bias);
  }

  MatMap<T>(c_final, B, H) = CMatMap<T>(c0, B, H);
  MatMap<T>(m_final, B, R) = CMatMap<T>(m0, B, R);
  const BatchBlocks blocks = batch_blocks(B, Index(sizeof(T)) * (R * G + H * P));
#if RNNKIT_PACKED_GEMM
  if constexpr (std::is_same_v<T, float>) {
    // By units when a step's gate tile is large: split by columns for the
    // product and by rows for the gate pass, half of it crosses between cores
    // at every step. Measured here: 9% faster at 512 KiB (B 32, H 1024), the
    // same at 128 KiB, 7% slower at 64 KiB, where four products of a few
    // panels each cost more than the traffic they save.
    const bool large_tile = B * G * Index(sizeof(float)) >= (Index(256) << 10);
    if (P == 0 && blocks.count == 1 && large_tile && seq.rows() >= 16) {  // rows >= 16: W_h gets packed
      detail::lstm_forward_by_units(cfg, w, seq, in, sequence_length, state_mask, gates, outputs, c_final, m_final,
                                    tape);
      return;
    }
  }
#endif
  detail::lstm_forward_by_rows(cfg, w, seq, in, sequence_length, state_mask, gates, outputs, c_final, m_final, tape,
                               blocks, W_h_prepacked);
}

// d_outputs: [rows, R]; dc_final: [B, H]; dm_final: [B, R]
// -> dx: [rows, D] (may be null); dc0: [B, H]; dm0: [B, R]; grads.
// in, c0 and the weights are those given to forward; dx stays unset for ids.
template <typename T>
void lstm_backward(const LstmConfig& cfg, const LstmWeights<T>& w, const SeqLayout& seq, const SeqInput<T>& in,
                   const int32_t* sequence_length, const StateMask<T>& state_mask, const T* c0, const LstmTape<T>& tape,
                   const T* d_outputs, const T* dc_final, const T* dm_final, T* dx, T* dc0, T* dm0,
                   const LstmGrads<T>& grads) {
  const Index D = cfg.D, H = cfg.H, P = cfg.P, R = cfg.R(), G = cfg.G(), B = seq.B;
  CMatMap<T> kernel(w.kernel, D + R, G);
  const auto W_h = kernel.bottomRows(R);
  const PackedRhs<T> W_h_t_packed(W_h.transpose(), seq.rows());
  std::optional<PackedRhs<T>> proj_t_packed;
  if (P > 0) proj_t_packed.emplace(CMatMap<T>(w.projection, H, P).transpose(), seq.rows());
  const T proj_clip = T(cfg.proj_clip);

  MatMap<T> dc(dc0, B, H);
  MatMap<T> dm(dm0, B, R);
  dc = CMatMap<T>(dc_final, B, H);
  dm = CMatMap<T>(dm_final, B, R);
  Mat<T> dm_step(B, R);                       // d m of this step (state + output)
  Mat<T> dm_pre_step(P > 0 ? B : 0, P > 0 ? H : 0);  // through the projection
  Mat<T> dm_rec(B, R);                        // d m_prev from this step's gates

  auto c_prev_row = [&](Index t, Index b) -> const T* {
    return t == 0 ? c0 + b * H : tape.c + seq.row(t - 1, b) * H;
  };

  // Batch rows [b0, b0 + n) back through every step (see batch_blocks).
  auto run_rows = [&](Index b0, Index n) {
    for (Index t = seq.T - 1; t >= 0; --t) {
      auto dz = seq.step(tape.gates, t, G).middleRows(b0, n);  // gate values in, gate grads out
      auto d_out = seq.step(d_outputs, t, R).middleRows(b0, n);
      for (Index i = 0; i < n; ++i) {
        const Index b = b0 + i;
        if (!active(sequence_length, t, b)) {
          dm_step.row(b).setZero();
          continue;
        }
        // the state gradient reaches m through the state mask, the output's directly
        if (state_mask.data)
          dm_step.row(b) = dm.row(b).cwiseProduct(CRowMap<T>(state_mask.row(seq, t, b, R), R)) + d_out.row(i);
        else
          dm_step.row(b) = dm.row(b) + d_out.row(i);
        if (P > 0 && proj_clip > 0) {
          const T* raw = tape.m_raw + seq.row(t, b) * P;
          for (Index k = 0; k < P; ++k) dm_step(b, k) *= clip_pass(raw[k], proj_clip);
        }
      }
      const T* dm_pre_data = dm_step.data();
      if (P > 0) {
        // The projection's gradient is one GEMM after the loop: keep d(m P) per row.
        seq.step(tape.m_raw, t, P).middleRows(b0, n) = dm_step.middleRows(b0, n);
        gemm(dm_pre_step.middleRows(b0, n), dm_step.middleRows(b0, n), *proj_t_packed);
        dm_pre_data = dm_pre_step.data();
      }

      parallel_for(n, worth_parallel(n, G), [&](Index i) {
        const Index b = b0 + i;
        T* zb = &dz(i, 0);
        if (!active(sequence_length, t, b)) {
          std::fill(zb, zb + G, T(0));
          return;
        }
        detail::lstm_row_backward(cfg, w, zb, tape.c + seq.row(t, b) * H, c_prev_row(t, b), dm_pre_data + b * H,
                                  &dc(b, 0));
      });

      gemm(dm_rec.middleRows(b0, n), dz, W_h_t_packed);
      for (Index b = b0; b < b0 + n; ++b)
        if (active(sequence_length, t, b)) dm.row(b) = dm_rec.row(b);
    }
  };
  const Index weight_bytes = Index(sizeof(T)) * (R * G + H * P);
  const BatchBlocks blocks = batch_blocks(B, weight_bytes);
  parallel_for(blocks.count, blocks.count > 1, [&](Index i) { run_rows(blocks.begin(i), blocks.rows(i)); });

  // Weight gradients: one GEMM each over the rows of each group (see
  // grad_blocks), and the input gradient of those rows.
  const Index K = D + R;
  sum_row_groups<T, 3>(grad_blocks(seq, weight_bytes), seq.T,
                       {grads.kernel, grads.bias, grads.projection}, {K * G, G, H * P},
                       [&](Index r0, Index n, const std::array<T*, 3>& d) {
                         const SeqInput<T> in_g = in.from_row(r0);
                         CMatMap<T> d_gates(tape.gates + r0 * G, n, G);
                         MatMap<T> d_kernel(d[0], K, G);
                         kernel_grad(d_kernel, in_g, n, tape.m_prev + r0 * R, d_gates, d[1]);
                         input_grad(dx ? dx + r0 * D : nullptr, in_g, n, d_gates, kernel.topRows(D));
                         if (P > 0)
                           gemm(MatMap<T>(d[2], H, P), CMatMap<T>(tape.m_pre + r0 * H, n, H).transpose(),
                                CMatMap<T>(tape.m_raw + r0 * P, n, P));
                       });
  if (cfg.peepholes) {
    RowMap<T> gi(grads.w_i_diag, H), gf(grads.w_f_diag, H), go(grads.w_o_diag, H);
    gi.setZero();
    gf.setZero();
    go.setZero();
    for (Index t = 0; t < seq.T; ++t)
      for (Index b = 0; b < B; ++b) {
        const Index r = seq.row(t, b);
        const T* zb = tape.gates + r * G;
        const T* cp = c_prev_row(t, b);
        const T* cn = tape.c + r * H;
        for (Index k = 0; k < H; ++k) {
          gi[k] += zb[k] * cp[k];
          gf[k] += zb[2 * H + k] * cp[k];
          go[k] += zb[3 * H + k] * cn[k];
        }
      }
  }
}

// ---- the description -------------------------------------------------------

// TF1's LSTMCell (and BasicLSTMCell) described for cell.hpp's binding and
// step cells. Its steps run in lstm_forward / lstm_backward above rather
// than in cell.hpp's loop over batch rows: a large float step splits by
// hidden units instead (lstm_forward_by_units), with a barrier per step
// between threads that own columns of every row.
struct LstmCell {
  static constexpr const char* kName = "lstm";
  static constexpr bool kOwnLoop = true;
  static constexpr std::array<VariableSpec, 6> kVariables{{{"kernel", "kernel"},
                                                           {"bias", "bias"},
                                                           {"w_f_diag", "w_f_diag", true},
                                                           {"w_i_diag", "w_i_diag", true},
                                                           {"w_o_diag", "w_o_diag", true},
                                                           {"projection/kernel", "projection", true}}};
  static constexpr std::array<StatePart, 2> kState{{{"c", "c0", "dc_final"}, {"h", "m0", "dm_final"}}};
  static constexpr std::array<OptionSpec, 4> kOptions{{{"forget_bias", OptionKind::Number, 1.0},
                                                       {"activation", OptionKind::Activation},
                                                       {"cell_clip", OptionKind::OptionalNumber},
                                                       {"proj_clip", OptionKind::OptionalNumber}}};
  // LstmTape's buffers (m_pre and m_raw are empty without a projection), and c0.
  static constexpr std::array<TapePart, 6> kTape{{{"gates", Saved::Gates},
                                                  {"c", Saved::StateAfter, 0},
                                                  {"m_prev", Saved::StatePrev},
                                                  {"m_pre", Saved::Own},
                                                  {"m_raw", Saved::Own},
                                                  {"c0", Saved::Initial, 0}}};

  LstmConfig cfg;
  Index D = 0, H = 0;

  LstmCell(const Shape* shapes, const OptionValue* options) {
    const Shape& bias = shapes[1];
    if (bias.size() != 1) throw std::invalid_argument("bias must be a rank-1 array [4H], got shape " + shape_str(bias));
    const Index G = bias[0];
    if (G % 4 != 0 || G == 0) throw std::invalid_argument("bias must have shape [4H], got [" + std::to_string(G) + "]");
    cfg.H = G / 4;
    if (!shapes[5].absent()) {
      const Shape& p = shapes[5];
      if (p.size() != 2 || p[0] != cfg.H)
        throw std::invalid_argument("projection/kernel must have shape [" + std::to_string(cfg.H) + ", P], got " +
                                    shape_str(p));
      cfg.P = p[1];
    }
    const Shape& kernel = shapes[0];
    if (kernel.size() != 2 || kernel[1] != G || kernel[0] < cfg.R())
      throw std::invalid_argument("kernel must have shape [D + " + std::to_string(cfg.R()) + ", " + std::to_string(G) +
                                  "], got " + shape_str(kernel));
    cfg.D = kernel[0] - cfg.R();
    cfg.forget_bias = *options[0];
    cfg.activation = static_cast<Activation>(static_cast<int>(*options[1]));
    cfg.cell_clip = options[2].value_or(0.0);
    cfg.proj_clip = options[3].value_or(0.0);
    if (options[2] && cfg.cell_clip <= 0) throw std::invalid_argument("cell_clip must be > 0");
    if (options[3] && cfg.proj_clip <= 0) throw std::invalid_argument("proj_clip must be > 0");
    const int peepholes = !shapes[2].absent() + !shapes[3].absent() + !shapes[4].absent();
    if (peepholes != 0 && peepholes != 3)
      throw std::invalid_argument("peepholes need all of w_i_diag, w_f_diag and w_o_diag");
    cfg.peepholes = peepholes == 3;
    D = cfg.D;
    H = cfg.H;
  }

  Shape variable_shape(size_t i) const {
    switch (i) {
      case 0: return {D + cfg.R(), cfg.G()};
      case 1: return {cfg.G()};
      case 5: return cfg.P > 0 ? Shape{H, cfg.P} : Shape{};
      default: return cfg.peepholes ? Shape{H} : Shape{};
    }
  }
  Index state_width(size_t p) const { return p == 0 ? H : cfg.R(); }
  Index gate_width() const { return cfg.G(); }
  Index own_tape_width(size_t k) const { return k == 3 ? (cfg.P > 0 ? H : 0) : cfg.P; }

  template <typename T>
  LstmWeights<T> weights(const T* const* v) const {
    return LstmWeights<T>{v[0], v[1], v[3], v[2], v[4], v[5]};
  }
  template <typename T>
  LstmTape<T> tape_of(T* const* tape) const {
    if (!tape) return LstmTape<T>{};
    return LstmTape<T>{tape[0], tape[1], tape[2], cfg.P > 0 ? tape[3] : nullptr, cfg.P > 0 ? tape[4] : nullptr};
  }

  // The weights of a StepCell: W_h packed once, for the rows of a step.
  template <typename T>
  struct Forward {
    LstmWeights<T> w;
    std::unique_ptr<PackedRhs<T>> W_h;
    Forward(const LstmCell& c, const T* const* v, Index rows) : w(c.weights(v)) {
      if (rows >= 16)
        W_h = std::make_unique<PackedRhs<T>>(CMatMap<T>(v[0], c.D + c.cfg.R(), c.cfg.G()).bottomRows(c.cfg.R()), rows);
    }
  };

  template <typename T>
  void forward(const LstmWeights<T>& w, const PackedRhs<T>* W_h, const CellIo<T>& io, const T* const* state0,
               T* outputs, T* const* state, T* const* tape, T* gates_ws) const {
    lstm_forward<T>(cfg, w, io.seq, io.in, io.sequence_length, io.state_mask, state0[0], state0[1], outputs, state[0],
                    state[1], tape_of(tape), gates_ws, W_h);
  }

  template <typename T>
  void backward(const T* const* vars, const CellIo<T>& io, T* const* tape, const T* d_outputs,
                const T* const* d_final, T* dx, T* const* d_state0, T* const* grads) const {
    const LstmGrads<T> g{grads[0], grads[1], grads[3], grads[2], grads[4], grads[5]};
    lstm_backward<T>(cfg, weights(vars), io.seq, io.in, io.sequence_length, io.state_mask, tape[5], tape_of(tape),
                     d_outputs, d_final[0], d_final[1], dx, d_state0[0], d_state0[1], g);
  }
};

}  // namespace rnnkit
