// TF1's BasicRNNCell, described for the time loop of cell.hpp:
//   h = act(x W_x + h_prev W_h + b),  kernel = [W_x; W_h]
// The gate buffer holds act(z) after forward; backward overwrites it with
// d z.
#pragma once

#include "rnnkit/cell.hpp"

namespace rnnkit {

struct BasicRnnCell {
  static constexpr const char* kName = "basic_rnn";
  static constexpr std::array<VariableSpec, 2> kVariables{{{"kernel", "kernel"}, {"bias", "bias"}}};
  static constexpr std::array<StatePart, 1> kState{{{"h", "h0", "dh_final"}}};
  static constexpr std::array<OptionSpec, 1> kOptions{{{"activation", OptionKind::Activation}}};
  static constexpr std::array<TapePart, 2> kTape{{{"h", Saved::Gates}, {"h_prev", Saved::StatePrev}}};
  // The state reaches the step before only through the recurrent product.
  static constexpr bool kStateGradAdds = false;

  Index D = 0, H = 0;
  Activation activation = Activation::Tanh;

  BasicRnnCell(const Shape* shapes, const OptionValue* options) {
    const Shape& bias = shapes[1];
    if (bias.size() != 1) throw std::invalid_argument("bias must be a rank-1 array [H], got shape " + shape_str(bias));
    H = bias[0];
    const Shape& kernel = shapes[0];
    if (kernel.size() != 2 || kernel[1] != H || kernel[0] < H)
      throw std::invalid_argument("kernel must have shape [D + " + std::to_string(H) + ", " + std::to_string(H) +
                                  "], got " + shape_str(kernel));
    D = kernel[0] - H;
    activation = static_cast<Activation>(static_cast<int>(*options[0]));
  }

  Shape variable_shape(size_t i) const { return i == 0 ? Shape{D + H, H} : Shape{H}; }
  Index state_width(size_t) const { return H; }
  Index gate_width() const { return H; }
  Index input_columns() const { return H; }
  Index scratch_width() const { return 0; }
  template <typename T>
  Index recurrent_bytes() const {
    return Index(sizeof(T)) * H * H;
  }

  template <typename T>
  struct Forward {
    CMatMap<T> W_x;  // [D, H]
    CRowMap<T> x_bias;
    RowVec<T> tail_bias;  // none: the input part is every column
    PackedRhs<T> W_h;     // packed once, used at every step
    Forward(const BasicRnnCell& c, const T* const* v, Index rows)
        : W_x(v[0], c.D, c.H), x_bias(v[1], c.H), W_h(CMatMap<T>(v[0], c.D + c.H, c.H).bottomRows(c.H), rows) {}
  };

  template <typename T>
  struct Backward {
    CMatMap<T> W_x;
    PackedRhs<T> W_h_t;
    Backward(const BasicRnnCell& c, const T* const* v, Index rows, bool)
        : W_x(v[0], c.D, c.H), W_h_t(CMatMap<T>(v[0], c.D + c.H, c.H).bottomRows(c.H).transpose(), rows) {}
  };

  template <typename T>
  void forward_step(const Forward<T>& w, ForwardRows<T>& s) const {
    s.multiply(s.z, s.h, w.W_h);
    s.last_pass(H, [&](Index b, const NewState<T>& next) {
      T* zb = &s.z(b, 0);
      for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
        const RowChunk<T> at(k0, H);
        Chunk<T> y = at.load(zb);
        activate_inplace(y, activation);
        at.store(y, zb);
        next.store(at, y);
      }
    });
  }

  template <typename T>
  void backward_step(const Backward<T>& w, BackwardRows<T>& s) const {
    s.first_pass(H, [&](Index b) {
      T* zb = &s.dz(b, 0);
      const T *mask = s.mask(b), *db = &s.dh(b, 0), *ob = s.d_out.row(b).data();
      for (Index k0 = 0; k0 < H; k0 += kChunk<T>) {
        const RowChunk<T> at(k0, H);
        Chunk<T> grad;
        activation_grad(grad, at.load(zb), activation);
        at.store(step_state_grad(at, db, mask, ob) * grad, zb);
      }
    });
    s.multiply(s.dh_rec, s.dz, w.W_h_t);
  }

  // d: d kernel [D + H, H], d bias [H]
  template <typename T>
  void weight_grads(const Backward<T>&, const SeqInput<T>& in, Index r0, Index n, T* const* tape,
                    const std::array<T*, 2>& d) const {
    CMatMap<T> d_z(tape[0] + r0 * H, n, H);
    MatMap<T> d_kernel(d[0], D + H, H);
    kernel_grad(d_kernel, in, n, tape[1] + r0 * H, d_z, d[1]);
  }
};

}  // namespace rnnkit
