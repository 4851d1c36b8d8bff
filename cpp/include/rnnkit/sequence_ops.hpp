// Whole-sequence elementwise helpers used by the wrappers and bidirectional
// layers: reversing rows within their lengths and adding on live steps.
#pragma once

#include "rnnkit/common.hpp"

namespace rnnkit {

// TF's reverse_sequence: out[t, b] = in[len_b - 1 - t, b] for t < len_b,
// out[t, b] = in[t, b] past the length (padding stays in place).
// in, out: [rows, W] in the layout of `seq`; lengths [B] or null (all T).
template <typename T>
void reverse_sequence(const SeqLayout& seq, const T* in, const int32_t* lengths, Index W, T* out) {
  if (seq.rows() * W == 0) return;  // nothing to move: no row would do any work
  parallel_for(seq.B, worth_parallel(seq.B, seq.T * W), [&](Index b) {
    const Index len = lengths ? lengths[b] : seq.T;
    for (Index t = 0; t < seq.T; ++t) {
      const Index src = t < len ? len - 1 - t : t;
      std::copy_n(in + seq.row(src, b) * W, W, out + seq.row(t, b) * W);
    }
  });
}

// out[t, b] += x[t, b] on live steps (t < len_b); padded steps untouched.
template <typename T>
void add_on_live_steps(const SeqLayout& seq, const T* x, const int32_t* lengths, Index W, T* out) {
  if (seq.rows() * W == 0) return;  // nothing to move: no row would do any work
  parallel_for(seq.B, worth_parallel(seq.B, seq.T * W), [&](Index b) {
    for (Index t = 0; t < seq.T; ++t) {
      if (!active(lengths, t, b)) continue;
      const T* src = x + seq.row(t, b) * W;
      T* dst = out + seq.row(t, b) * W;
      for (Index k = 0; k < W; ++k) dst[k] += src[k];
    }
  });
}

// out = x ⊙ mask (inverted dropout: mask values 0 or 1/keep_prob). The mask is
// [rows, W] like x, or [B, W] reused at every step (variational).
template <typename T>
void apply_mask(const SeqLayout& seq, const T* x, const T* mask, bool per_step, Index W, T* out) {
  if (seq.rows() * W == 0) return;  // nothing to move: no row would do any work
  parallel_for(seq.B, worth_parallel(seq.B, seq.T * W), [&](Index b) {
    for (Index t = 0; t < seq.T; ++t) {
      const Index r = seq.row(t, b);
      const T* m = mask + (per_step ? r : b) * W;
      for (Index k = 0; k < W; ++k) out[r * W + k] = x[r * W + k] * m[k];
    }
  });
}

}  // namespace rnnkit
