// Boundary helpers shared by the binding files: take numpy arrays by name,
// check dtype, layout and shape with messages that name the argument, and
// allocate results. Kernels trust what passes through here.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include "result_blocks.hpp"
#include "rnnkit/cell.hpp"

namespace rnnkit_py {

namespace py = pybind11;
using rnnkit::Index;

template <typename T>
using Array = py::array_t<T, py::array::c_style>;

using rnnkit::shape_str;

inline std::vector<Index> shape_of(const py::array& a) {
  return std::vector<Index>(a.shape(), a.shape() + a.ndim());
}

template <typename T>
const char* dtype_name() {
  return sizeof(T) == 4 ? "float32" : "float64";
}

// The shape an argument must have (-1 matches any size), as the argument of
// a call: a braced list of up to four sizes, copied in place, or a vector,
// read where it lies. Checking an argument then allocates nothing (a
// sampling step checks five).
class ShapeSpec {
 public:
  ShapeSpec(std::initializer_list<Index> list) : rank_(list.size()) {
    if (rank_ > 4) throw std::length_error("ShapeSpec: a braced shape has at most 4 sizes");
    std::copy(list.begin(), list.end(), small_);
  }
  ShapeSpec(const std::vector<Index>& v) : vector_(&v), rank_(v.size()) {}
  ShapeSpec(const rnnkit::Shape& s) : rank_(std::min<size_t>(s.size(), 4)) { std::copy(s.dims, s.dims + rank_, small_); }
  size_t size() const { return rank_; }
  Index operator[](size_t i) const { return vector_ ? (*vector_)[i] : small_[i]; }
  std::vector<Index> vector() const { return vector_ ? *vector_ : std::vector<Index>(small_, small_ + rank_); }

 private:
  Index small_[4] = {};
  const std::vector<Index>* vector_ = nullptr;
  size_t rank_;
};

// The name of obj's type, for messages.
inline std::string type_name(const py::handle& obj) {
  return std::string(py::str(py::type::of(obj).attr("__name__")));
}

// Whether dtype `dt` means T, by NumPy's equivalence (PyArray_EquivTypes):
// a dtype object that was copied or unpickled (a deep-copied model's) is
// another object with the same meaning, while a non-native byte order is
// not T.
template <typename T>
bool is_dtype(const py::dtype& dt) {
  return py::detail::npy_api::get().PyArray_EquivTypes_(dt.ptr(), py::dtype::of<T>().ptr());
}
inline bool same_dtype(const py::dtype& a, const py::dtype& b) {
  return py::detail::npy_api::get().PyArray_EquivTypes_(a.ptr(), b.ptr());
}

// `obj` as an ndarray, or a TypeError naming it: nothing of an argument
// (its rank, its shape) is read before this check.
inline py::array as_array(const py::handle& obj, const char* name) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + " must be a numpy array, got " + type_name(obj));
  return py::reinterpret_borrow<py::array>(obj);
}

// An optional number (None: `none_value`), or a TypeError naming it.
inline double optional_number(const py::object& obj, const char* name, double none_value) {
  if (obj.is_none()) return none_value;
  if (py::isinstance<py::bool_>(obj) || !(py::isinstance<py::float_>(obj) || py::isinstance<py::int_>(obj)))
    throw py::type_error(std::string(name) + " must be a number or None, got " + type_name(obj));
  return obj.cast<double>();
}

// `name` must be a C-contiguous ndarray of dtype T with the given shape.
// Returns it without copying.
template <typename T>
Array<T> take(const py::handle& obj, const char* name, const ShapeSpec& shape) {
  py::array a = as_array(obj, name);
  if (!is_dtype<T>(a.dtype()))
    throw py::type_error(std::string(name) + " must have dtype " + dtype_name<T>() + ", got " +
                         std::string(py::str(a.dtype())));
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = shape[i] < 0 || a.shape(i) == shape[i];
  if (!ok)
    throw py::value_error(std::string(name) + " must have shape " + shape_str(shape.vector()) + ", got " +
                          shape_str(shape_of(a)));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + " must be C-contiguous");
  return py::reinterpret_borrow<Array<T>>(a);
}

// Optional int32 sequence_length [B], every value in [0, T]; returns null for None.
inline const int32_t* take_lengths(const py::object& obj, Index B, Index T,
                                   py::object& keep_alive) {
  keep_alive = py::none();
  if (obj.is_none()) return nullptr;
  if (!py::isinstance<py::array>(obj) ||
      !is_dtype<int32_t>(py::reinterpret_borrow<py::array>(obj).dtype()))
    throw py::type_error("sequence_length must be an int32 numpy array");
  auto a = take<int32_t>(obj, "sequence_length", {B});
  const int32_t* p = a.data();
  for (Index b = 0; b < B; ++b)
    if (p[b] < 0 || p[b] > T)
      throw py::value_error("sequence_length values must lie in [0, " + std::to_string(T) +
                            "], got " + std::to_string(p[b]) + " at index " + std::to_string(b));
  keep_alive = a;
  return p;
}

// Arrays the kernels write start on a cache line (numpy's own start 16 bytes
// past one): threads that split a step by rows or by hidden units then meet
// at line boundaries instead of sharing a line at every boundary of every
// row, which costs a cross-core transfer per line per step. Their memory
// comes from ResultBlocks, which recycles the large blocks of a training
// step. An array of one row (a single step's state, a sampling head's
// logits) is never split by rows, and a split by columns writes each
// boundary line once: it is a plain numpy array, the cheapest to make (a
// sampling step returns four of them).
template <typename T>
Array<T> empty(const std::vector<Index>& shape) {
  py::ssize_t n = 1;
  for (Index s : shape) n *= s;
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  if (shape.empty() || n == shape.back()) return Array<T>(std::move(dims));
  void* data = nullptr;
  py::capsule owner = ResultBlocks::instance().take(static_cast<size_t>(n) * sizeof(T), &data);
  return Array<T>(std::move(dims), static_cast<T*>(data), owner);
}

// ---- tapes ---------------------------------------------------------------------
// A tape is the dict in which a training forward records what its backward
// reads. Every buffer a kernel reads or writes is held by an owned reference
// (an Array in the binding's frame) for the kernel's whole run: another
// thread may replace the dict's entries meanwhile without freeing what the
// kernel uses. A forward first drops the mark "recorded" and sets it again
// once its kernel has run; a backward needs it, so a tape that a failed
// forward left half written is refused.

inline void drop_mark(py::dict& tape) {
  if (PyDict_DelItemString(tape.ptr(), "recorded") != 0) PyErr_Clear();  // absent: nothing to drop
}

inline py::dict as_tape(const py::handle& obj) {
  if (!py::isinstance<py::dict>(obj)) throw py::type_error("tape must be a dict or None, got " + type_name(obj));
  return py::reinterpret_borrow<py::dict>(obj);
}

// The tape a training forward fills: None (inference) or a dict, unmarked.
inline py::object begin_tape(const py::object& obj) {
  if (obj.is_none()) return obj;
  py::dict tape = as_tape(obj);
  drop_mark(tape);
  return std::move(tape);
}

inline void end_tape(const py::object& tape) {
  if (!tape.is_none()) tape.cast<py::dict>()["recorded"] = true;
}

// tape[key], or a ValueError saying that no forward filled it.
inline py::object tape_get(const py::dict& tape, const char* key) {
  if (!tape.contains("recorded"))
    throw py::value_error("tape holds no training forward: backward called before forward(training), "
                          "or after the backward that spent its tape (one backward per forward)");
  if (!tape.contains(key)) throw py::value_error(std::string("tape has no entry '") + key + "'");
  return tape[key];
}

// A bool entry of the tape.
inline bool tape_flag(const py::dict& tape, const char* key) {
  py::object v = tape_get(tape, key);
  if (!py::isinstance<py::bool_>(v))
    throw py::type_error(std::string("tape entry '") + key + "' must be a bool, got " + type_name(v));
  return v.cast<bool>();
}

// Marks the tape spent: its buffers stay for the next forward to reuse.
inline void spend_tape(py::dict& tape) { drop_mark(tape); }

// The array in `tape[key]` if it already has this shape (reused across
// training calls), otherwise a new one stored there.
template <typename T>
Array<T> tape_buffer(py::dict& tape, const char* key, const std::vector<Index>& shape) {
  if (tape.contains(key)) {
    py::object old = tape[key];
    if (py::isinstance<py::array>(old)) {
      py::array a = py::reinterpret_borrow<py::array>(old);
      if (is_dtype<T>(a.dtype()) && shape_of(a) == shape && (a.flags() & py::array::c_style) &&
          a.writeable())
        return py::reinterpret_borrow<Array<T>>(a);
    }
  }
  Array<T> a = empty<T>(shape);
  tape[key] = a;
  return a;
}

// The tape buffers of one kernel call, held for its whole run.
struct HeldBuffers {
  std::vector<py::object> arrays;
  template <typename T>
  T* hold(Array<T> a) {
    T* p = a.mutable_data();
    arrays.push_back(std::move(a));
    return p;
  }
};

// A copy of `src` in tape[key] (a buffer reused across calls): what backward
// reads is what forward saw, whatever the caller does to its own array between.
template <typename T>
Array<T> tape_copy(py::dict& tape, const char* key, const Array<T>& src) {
  Array<T> dst = tape_buffer<T>(tape, key, shape_of(src));
  std::copy(src.data(), src.data() + src.size(), dst.mutable_data());
  return dst;
}

// A tape entry written by forward; checked so that a foreign dict cannot
// point the kernels at a short buffer.
template <typename T>
Array<T> tape_entry(const py::dict& tape, const char* key, const std::vector<Index>& shape) {
  py::object v = tape_get(tape, key);
  Array<T> a = take<T>(v, (std::string("tape ") + key).c_str(), shape);
  if (!a.writeable()) throw py::value_error(std::string("tape ") + key + " must be writeable");
  return a;
}

// Per-thread scratch reused across inference calls (no per-call allocation
// once it has grown to the largest size seen).
template <typename T>
T* scratch(size_t n) {
  thread_local std::vector<T, Eigen::aligned_allocator<T>> buffer;  // aligned like Eigen matrices (64 bytes with AVX-512)
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

// Runs f<float> or f<double> by the dtype of `probe` (named `name`).
template <typename F>
auto dispatch_float(const py::handle& probe, const char* name, F&& f) {
  py::dtype dt = as_array(probe, name).dtype();
  if (is_dtype<float>(dt)) return f(float{});
  if (is_dtype<double>(dt)) return f(double{});
  throw py::type_error(std::string(name) + " must have dtype float32 or float64, got " + std::string(py::str(dt)));
}

// Runs f(int32_t{}) or f(int64_t{}) by the dtype of the integer array `obj`
// (labels, ids, targets; named `name`).
template <typename F>
auto dispatch_int(const py::handle& obj, const char* name, F&& f) {
  py::dtype dt = as_array(obj, name).dtype();
  if (is_dtype<int32_t>(dt)) return f(int32_t{});
  if (is_dtype<int64_t>(dt)) return f(int64_t{});
  throw py::type_error(std::string(name) + " must have dtype int32 or int64, got " + std::string(py::str(dt)));
}

inline rnnkit::Activation parse_activation(const std::string& name) {
  if (name == "tanh") return rnnkit::Activation::Tanh;
  if (name == "relu") return rnnkit::Activation::Relu;
  if (name == "sigmoid") return rnnkit::Activation::Sigmoid;
  if (name == "linear" || name == "identity") return rnnkit::Activation::Identity;
  throw py::value_error("activation must be one of 'tanh', 'relu', 'sigmoid', 'linear', got '" +
                        name + "'");
}

// [rows, w] as the 3-d array shape of the sequence.
inline std::vector<Index> seq_shape(const rnnkit::SeqLayout& s, Index width) {
  return s.time_major ? std::vector<Index>{s.T, s.B, width} : std::vector<Index>{s.B, s.T, width};
}

// Reads T and B from a rank-3 sequence array, checking rank and depth.
inline rnnkit::SeqLayout layout_of(const py::array& x, const char* name, Index depth, bool time_major) {
  if (x.ndim() != 3)
    throw py::value_error(std::string(name) + " must have rank 3 (" +
                          (time_major ? "[T, B, D]" : "[B, T, D]") + "), got shape " +
                          shape_str(shape_of(x)));
  if (x.shape(2) != depth)
    throw py::value_error(std::string(name) + " must have depth " + std::to_string(depth) +
                          " (last axis), got shape " + shape_str(shape_of(x)));
  rnnkit::SeqLayout s;
  s.time_major = time_major;
  s.T = time_major ? x.shape(0) : x.shape(1);
  s.B = time_major ? x.shape(1) : x.shape(0);
  return s;
}

// Every id in [0, depth): the kernels index weight rows with them.
inline void check_ids(const int32_t* ids, Index rows, Index depth, const std::string& name) {
  for (Index i = 0; i < rows; ++i)
    if (ids[i] < 0 || ids[i] >= depth)
      throw py::value_error(name + " token ids must lie in [0, " + std::to_string(depth) + "), got " +
                            std::to_string(ids[i]));
}

// One step of B rows (T = 1: both layouts are the same memory).
inline rnnkit::SeqLayout step_layout(Index B) {
  rnnkit::SeqLayout s;
  s.time_major = true;
  s.T = 1;
  s.B = B;
  return s;
}

// The inputs of a recurrent kernel: floats [B, T, D] ([T, B, D] when time
// major) of dtype T, or int32 token ids [B, T] ([T, B]), each in [0, D); or
// a single step, one rank lower: floats [B, D] or ids [B] (a cell called as
// cell(x, state): its outputs are [B, width], with no time axis to add and
// drop in Python).
// Float inputs whose rows are all one-hot also get ids (rnnkit::one_hot_rows).
template <typename T>
struct InputArg {
  rnnkit::SeqLayout seq;
  rnnkit::SeqInput<T> in;
  bool step = false;      // a single step: no time axis
  py::array array;                    // keeps the buffer alive
  std::vector<int32_t> one_hot_ids;   // in.ids of one-hot float inputs, as found by the scan
  py::object recorded_ids;            // or as a forward recorded them (keeps them alive)

  InputArg() = default;
  InputArg(InputArg&&) = default;  // moving keeps one_hot_ids' buffer, so in.ids stays valid
  InputArg& operator=(InputArg&&) = default;
  InputArg(const InputArg&) = delete;
  InputArg& operator=(const InputArg&) = delete;

  // The shape of an array with one row of `width` per input row (outputs,
  // d_outputs, dx): the inputs' own layout.
  std::vector<Index> shape(Index width) const {
    return step ? std::vector<Index>{seq.B, width} : seq_shape(seq, width);
  }
};

// `known_one_hot_ids`: what forward found for these inputs (its tape's
// "x_ids"), so that backward does not scan x again; None to scan.
template <typename T>
InputArg<T> take_inputs(const py::handle& obj, const char* name, Index depth, bool time_major,
                        const py::object& known_one_hot_ids = py::none()) {
  InputArg<T> r;
  r.in.D = depth;
  const bool is_array = py::isinstance<py::array>(obj);
  const py::ssize_t rank = is_array ? py::reinterpret_borrow<py::array>(obj).ndim() : -1;
  if (is_array && is_dtype<int32_t>(py::reinterpret_borrow<py::array>(obj).dtype())) {
    if (rank != 2 && rank != 1)
      throw py::value_error(std::string(name) + " (token ids) must have rank 2 " +
                            (time_major ? "[T, B]" : "[B, T]") + " (or rank 1 [B] for one step), got shape " +
                            shape_str(shape_of(py::reinterpret_borrow<py::array>(obj))));
    auto a = take<int32_t>(obj, name, std::vector<Index>(static_cast<size_t>(rank), -1));
    r.step = rank == 1;
    if (r.step) {
      r.seq = step_layout(a.shape(0));
    } else {
      r.seq.time_major = time_major;
      r.seq.T = time_major ? a.shape(0) : a.shape(1);
      r.seq.B = time_major ? a.shape(1) : a.shape(0);
    }
    check_ids(a.data(), r.seq.rows(), depth, name);
    r.in.ids = a.data();
    r.array = a;
    return r;
  }
  if (is_array && rank != 3 && rank != 2)
    throw py::value_error(std::string(name) + " must have rank 3 " + (time_major ? "[T, B, D]" : "[B, T, D]") +
                          " (or rank 2 [B, D] for one step), got shape " +
                          shape_str(shape_of(py::reinterpret_borrow<py::array>(obj))));
  r.step = rank == 2;
  Array<T> x = r.step ? take<T>(obj, name, {-1, depth}) : take<T>(obj, name, {-1, -1, depth});
  r.seq = r.step ? step_layout(x.shape(0)) : layout_of(x, name, depth, time_major);
  r.in.x = x.data();
  r.array = x;
  const Index rows = r.seq.rows();
  if (!known_one_hot_ids.is_none()) {
    auto ids = take<int32_t>(known_one_hot_ids, "tape x_ids", {rows});
    check_ids(ids.data(), rows, depth, "tape x_ids");
    r.in.ids = ids.data();
    r.recorded_ids = ids;
  } else if (rows > 0) {
    r.one_hot_ids.resize(static_cast<size_t>(rows));
    if (rnnkit::one_hot_rows(r.in.x, rows, depth, r.one_hot_ids.data()))
      r.in.ids = r.one_hot_ids.data();
    else
      r.one_hot_ids = {};
  }
  return r;
}

// Records what every recurrent backward reads besides the cell's own
// buffers, as copies owned by the tape: the inputs (and the ids of one-hot
// float inputs), the lengths, the state mask and the layout. The forward's
// kernel then reads the copies too (`input` and `lengths` are repointed).
template <typename T>
void record_inputs(py::dict& tape, InputArg<T>& input, const int32_t*& lengths, py::object& keep_lengths,
                   const py::object& mask_obj) {
  const Index rows = input.seq.rows();
  if (input.in.x != nullptr) {
    Array<T> x = tape_copy<T>(tape, "x", py::reinterpret_borrow<Array<T>>(input.array));
    input.in.x = x.data();
    input.array = x;
    if (input.in.ids != nullptr) {
      Array<int32_t> ids = tape_buffer<int32_t>(tape, "x_ids", {rows});
      std::copy(input.in.ids, input.in.ids + rows, ids.mutable_data());
      input.in.ids = ids.data();
      input.recorded_ids = ids;
    } else {
      tape["x_ids"] = py::none();
    }
  } else {
    Array<int32_t> ids = tape_copy<int32_t>(tape, "x", py::reinterpret_borrow<Array<int32_t>>(input.array));
    input.in.ids = ids.data();
    input.array = ids;
    tape["x_ids"] = py::none();
  }
  if (lengths != nullptr) {
    Array<int32_t> copy = tape_buffer<int32_t>(tape, "sequence_length", {input.seq.B});
    std::copy(lengths, lengths + input.seq.B, copy.mutable_data());
    lengths = copy.data();
    keep_lengths = copy;
  } else {
    tape["sequence_length"] = py::none();
  }
  tape["state_mask"] = mask_obj;
  tape["time_major"] = input.seq.time_major;
}

// The inputs of a backward, as its forward recorded them.
template <typename T>
InputArg<T> recorded_inputs(const py::dict& tape, Index depth) {
  py::object x = tape_get(tape, "x");
  return take_inputs<T>(x, "tape x", depth, tape_flag(tape, "time_major"), tape_get(tape, "x_ids"));
}

// Optional state dropout mask: [B, T, w] ([T, B, w] time major), a mask per
// step, or [B, w], one mask reused at every step (variational).
template <typename T>
rnnkit::StateMask<T> take_state_mask(const py::object& obj, const rnnkit::SeqLayout& seq, Index width,
                                     const char* name = "state_mask") {
  rnnkit::StateMask<T> mask;
  if (obj.is_none()) return mask;
  if (py::isinstance<py::array>(obj) && py::reinterpret_borrow<py::array>(obj).ndim() == 2) {
    mask.data = take<T>(obj, name, {seq.B, width}).data();
    mask.per_step = false;
  } else {
    mask.data = take<T>(obj, name, seq_shape(seq, width)).data();
  }
  return mask;
}

// dx for dense inputs when wanted; None for token ids (they have no
// gradient) or when the caller does not want it (the first layer of a model).
template <typename T>
py::object input_grad_array(const InputArg<T>& a, bool wanted, T** data) {
  if (!wanted || a.in.x == nullptr) {
    *data = nullptr;
    return py::none();
  }
  Array<T> dx = empty<T>(a.shape(a.in.D));
  *data = dx.mutable_data();
  return dx;
}

}  // namespace rnnkit_py
