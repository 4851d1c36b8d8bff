// Bindings of the cells described for cell.hpp's time loop: one line each
// (bind_cell.hpp writes the kernels' arguments, checks and step cells).
#include "bind_cell.hpp"
#include "rnnkit/basic_rnn.hpp"
#include "rnnkit/gru.hpp"
#include "rnnkit/layer_norm_lstm.hpp"
#include "rnnkit/lstm.hpp"

namespace rnnkit_py {

void init_cells(py::module_& m) {
  using namespace rnnkit;
  bind_cell<BasicRnnCell>(m, "TF1's BasicRNNCell over a sequence. Returns (outputs, h_final); fills `tape` when given.",
                          "BPTT through the basic_rnn_forward that filled `tape`. Returns (dx, dh0, grads); dx is None "
                          "for token ids or with input_grad=False.");
  bind_cell<GruCell>(m,
                     "TF1's GRUCell over a sequence. x: [B, T, D] ([T, B, D] when time_major); h0: [B, H]. Returns "
                     "(outputs, h_final); fills `tape` (a dict) when given.",
                     "BPTT through the gru_forward that filled `tape`. Returns (dx, dh0, grads) with grads keyed by "
                     "variable name (dx: None for token ids or with input_grad=False); the tape is spent until the "
                     "next forward.");
  bind_cell<LstmCell>(m,
                      "TF1's LSTMCell / BasicLSTMCell over a sequence. x: [B, T, D] ([T, B, D] when time_major); "
                      "c0: [B, H]; m0: [B, R]. Returns (outputs, c_final, m_final); fills `tape` (a dict) when given.",
                      "BPTT through the lstm_forward that filled `tape`. Returns (dx, dc0, dm0, grads) with grads "
                      "keyed by variable name (dx: None for token ids or with input_grad=False); the tape is spent "
                      "until the next forward.");
  bind_cell<GruResetAfterCell>(
      m,
      "The 'reset after' GRU (PyTorch / Keras 3 / cuDNN) over a sequence. x: [B, T, D] ([T, B, D] when "
      "time_major); h0: [B, H]. Returns (outputs, h_final); fills `tape` when given.",
      "BPTT through the gru_reset_after_forward that filled `tape`. Returns (dx, dh0, grads) with grads keyed by "
      "variable name (dx: None for token ids or with input_grad=False); the tape is spent until the next forward.");
  bind_cell<LayerNormLstmCell>(
      m,
      "TF1's tf.contrib.rnn.LayerNormBasicLSTMCell over a sequence: bias without layer norm, else the ten "
      "gamma/beta arrays. Returns (outputs, c_final, h_final); fills `tape` when given.",
      "BPTT through the layer_norm_lstm_forward that filled `tape`. Returns (dx, dc0, dh0, grads) with grads "
      "keyed by variable name (dx: None for token ids or with input_grad=False).");
}

}  // namespace rnnkit_py
