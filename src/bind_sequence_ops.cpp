// Bindings for the sequence helpers of the wrappers and bidirectional layers.
#include "bind_util.hpp"
#include "rnnkit/sequence_ops.hpp"

namespace rnnkit_py {
namespace {

using namespace rnnkit;

// A float sequence [B, T, W] / [T, B, W] of dtype T and its layout.
template <typename T>
std::pair<Array<T>, SeqLayout> take_sequence(const py::object& obj, const char* name, bool time_major) {
  if (as_array(obj, name).ndim() != 3)
    throw py::value_error(std::string(name) + " must be a rank-3 array, got shape " +
                          shape_str(shape_of(py::reinterpret_borrow<py::array>(obj))));
  Array<T> a = take<T>(obj, name, {-1, -1, -1});
  return {a, layout_of(a, name, a.shape(2), time_major)};
}

}  // namespace

void init_sequence_ops(py::module_& m) {
  m.def(
      "reverse_sequence",
      [](py::object x, py::object sequence_length, bool time_major) -> py::object {
        // token ids [B, T] (int32) are reversed as rows of width 1
        if (py::isinstance<py::array>(x) &&
            is_dtype<int32_t>(py::reinterpret_borrow<py::array>(x).dtype())) {
          Array<int32_t> ids = take<int32_t>(x, "x", {-1, -1});
          SeqLayout seq;
          seq.time_major = time_major;
          seq.T = ids.shape(time_major ? 0 : 1);
          seq.B = ids.shape(time_major ? 1 : 0);
          py::object keep;
          const int32_t* lengths = take_lengths(sequence_length, seq.B, seq.T, keep);
          Array<int32_t> out = empty<int32_t>(shape_of(ids));
          py::gil_scoped_release release;
          reverse_sequence<int32_t>(seq, ids.data(), lengths, 1, out.mutable_data());
          return std::move(out);
        }
        return dispatch_float(x, "x", [&](auto zero) -> py::object {
          using T = decltype(zero);
          auto [a, seq] = take_sequence<T>(x, "x", time_major);
          py::object keep;
          const int32_t* lengths = take_lengths(sequence_length, seq.B, seq.T, keep);
          Array<T> out = empty<T>(shape_of(a));
          py::gil_scoped_release release;
          reverse_sequence<T>(seq, a.data(), lengths, a.shape(2), out.mutable_data());
          return std::move(out);
        });
      },
      "TF's reverse_sequence on the time axis: each row reversed within its length "
      "(float [B, T, W] sequences or int32 token ids [B, T]).",
      py::arg("x"), py::arg("sequence_length") = py::none(), py::arg("time_major") = false);
  m.def(
      "apply_mask",
      [](py::object x, py::object mask, bool time_major) {
        return dispatch_float(x, "x", [&](auto zero) -> py::object {
          using T = decltype(zero);
          auto [a, seq] = take_sequence<T>(x, "x", time_major);
          const StateMask<T> m = take_state_mask<T>(mask, seq, a.shape(2), "mask");
          if (m.data == nullptr) throw py::value_error("mask must be an array, got None");
          Array<T> out = empty<T>(shape_of(a));
          py::gil_scoped_release release;
          apply_mask<T>(seq, a.data(), m.data, m.per_step, a.shape(2), out.mutable_data());
          return std::move(out);
        });
      },
      "x * mask for a sequence x; mask is shaped like x or [B, W] (the same at every step).",
      py::arg("x"), py::arg("mask"), py::arg("time_major") = false);
  m.def(
      "add_on_live_steps",
      [](py::object out, py::object x, py::object sequence_length, bool time_major) {
        dispatch_float(out, "out", [&](auto zero) {
          using T = decltype(zero);
          auto [o, seq] = take_sequence<T>(out, "out", time_major);
          if (!o.writeable()) throw py::value_error("out must be writeable (it is updated in place)");
          Array<T> a = take<T>(x, "x", shape_of(o));
          py::object keep;
          const int32_t* lengths = take_lengths(sequence_length, seq.B, seq.T, keep);
          py::gil_scoped_release release;
          add_on_live_steps<T>(seq, a.data(), lengths, o.shape(2), o.mutable_data());
          return 0;
        });
      },
      "out += x in place on the steps inside each row's length.", py::arg("out"), py::arg("x"),
      py::arg("sequence_length") = py::none(), py::arg("time_major") = false);
}

}  // namespace rnnkit_py
