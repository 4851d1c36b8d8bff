// Bindings for the Dense kernels: any-rank inputs are flattened to rows here.
#include "bind_util.hpp"
#include "rnnkit/dense.hpp"

namespace rnnkit_py {
namespace {

using namespace rnnkit;

struct DenseShape {
  Index D = 0, U = 0, N = 0;
  std::vector<Index> lead;  // the leading axes of x (N is their product)
};

// kernel [D, U] gives D and U; `x` must be [..., D] with rank >= 1.
DenseShape dense_shape(const py::object& x_obj, const py::object& kernel_obj) {
  py::array k = as_array(kernel_obj, "kernel");
  if (k.ndim() != 2) throw py::value_error("kernel must be a rank-2 array [D, U], got shape " + shape_str(shape_of(k)));
  py::array x = as_array(x_obj, "x");
  DenseShape s;
  s.D = k.shape(0);
  s.U = k.shape(1);
  if (x.ndim() < 1 || x.shape(x.ndim() - 1) != s.D) {
    throw py::value_error("x must have shape [..., " + std::to_string(s.D) + "] (last axis = kernel rows), got " +
                          shape_str(shape_of(x)));
  }
  s.N = 1;
  for (py::ssize_t i = 0; i + 1 < x.ndim(); ++i) {
    s.lead.push_back(x.shape(i));
    s.N *= x.shape(i);
  }
  return s;
}

std::vector<Index> with_last(std::vector<Index> lead, Index last) {
  lead.push_back(last);
  return lead;
}

template <typename T>
py::array forward_impl(const DenseShape& s, py::object x_obj, py::object kernel_obj, py::object bias_obj) {
  Array<T> x = take<T>(x_obj, "x", with_last(std::vector<Index>(s.lead.size(), -1), s.D));
  Array<T> kernel = take<T>(kernel_obj, "kernel", {s.D, s.U});
  Array<T> bias = take<T>(bias_obj, "bias", {s.U});
  Array<T> y = empty<T>(with_last(s.lead, s.U));
  {
    py::gil_scoped_release release;
    dense_forward<T>(s.N, s.D, s.U, x.data(), kernel.data(), bias.data(), y.mutable_data());
  }
  return y;
}

template <typename T>
py::tuple backward_impl(const DenseShape& s, py::object x_obj, py::object kernel_obj, py::object dy_obj) {
  Array<T> x = take<T>(x_obj, "x", with_last(std::vector<Index>(s.lead.size(), -1), s.D));
  Array<T> kernel = take<T>(kernel_obj, "kernel", {s.D, s.U});
  Array<T> dy = take<T>(dy_obj, "dy", with_last(s.lead, s.U));
  Array<T> dx = empty<T>(with_last(s.lead, s.D));
  Array<T> dk = empty<T>({s.D, s.U}), db = empty<T>({s.U});
  {
    py::gil_scoped_release release;
    dense_backward<T>(s.N, s.D, s.U, x.data(), kernel.data(), dy.data(), dx.mutable_data(),
                      dk.mutable_data(), db.mutable_data());
  }
  return py::make_tuple(dx, dk, db);
}

}  // namespace

void init_dense(py::module_& m) {
  m.def(
      "dense_forward",
      [](py::object x, py::object kernel, py::object bias) {
        DenseShape s = dense_shape(x, kernel);
        return dispatch_float(kernel, "kernel", [&](auto zero) {
          return forward_impl<decltype(zero)>(s, x, kernel, bias);
        });
      },
      "y = x · kernel + bias on the last axis. x: [..., D]; kernel: [D, U]; bias: [U] -> y: [..., U].",
      py::arg("x"), py::arg("kernel"), py::arg("bias"));
  m.def(
      "dense_backward",
      [](py::object x, py::object kernel, py::object dy) {
        DenseShape s = dense_shape(x, kernel);
        return dispatch_float(kernel, "kernel", [&](auto zero) {
          return backward_impl<decltype(zero)>(s, x, kernel, dy);
        });
      },
      "Gradients of dense_forward. x: [..., D]; kernel: [D, U]; dy: [..., U] -> "
      "(dx [..., D], d_kernel [D, U], d_bias [U]).",
      py::arg("x"), py::arg("kernel"), py::arg("dy"));
}

}  // namespace rnnkit_py
