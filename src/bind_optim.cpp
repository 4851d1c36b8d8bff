// Bindings for the optimizer updates and clip_by_global_norm. Each takes the
// whole list of parameters, checks every entry by its index, then runs one
// C++ call without the GIL. float32 and float64 entries may be mixed.
#include "bind_util.hpp"
#include "rnnkit/optim.hpp"

namespace rnnkit_py {
namespace {

using namespace rnnkit;

std::string at(const char* list, size_t i) { return std::string(list) + "[" + std::to_string(i) + "]: "; }

// A float32/float64, C-contiguous array; writeable when it is updated in place.
py::array take_float(const py::handle& obj, const std::string& where, const char* what, bool writeable) {
  if (!py::isinstance<py::array>(obj)) throw py::type_error(where + what + " must be a numpy array, got " + type_name(obj));
  py::array a = py::reinterpret_borrow<py::array>(obj);
  if (!is_dtype<float>(a.dtype()) && !is_dtype<double>(a.dtype()))
    throw py::type_error(where + what + " must have dtype float32 or float64, got " + std::string(py::str(a.dtype())));
  if (!(a.flags() & py::array::c_style)) throw py::value_error(where + what + " must be C-contiguous");
  if (writeable && !a.writeable()) throw py::value_error(where + what + " must be writeable (it is updated in place)");
  return a;
}

// `obj` must match `var` in dtype and shape.
py::array take_like(const py::handle& obj, const py::array& var, const std::string& where, const char* what,
                    bool writeable) {
  py::array a = take_float(obj, where, what, writeable);
  if (!same_dtype(a.dtype(), var.dtype()))
    throw py::type_error(where + what + " must have dtype " + std::string(py::str(var.dtype())) +
                         " (the variable's), got " + std::string(py::str(a.dtype())));
  if (shape_of(a) != shape_of(var))
    throw py::value_error(where + what + " must have shape " + shape_str(shape_of(var)) +
                          " (the variable's), got " + shape_str(shape_of(a)));
  return a;
}

template <typename T>
T* ptr(const py::array& a) {
  return static_cast<T*>(const_cast<void*>(a.data()));
}

bool is_f32(const py::array& a) { return is_dtype<float>(a.dtype()); }

py::list as_list(const py::object& obj, const char* name) {
  if (!py::isinstance<py::list>(obj) && !py::isinstance<py::tuple>(obj))
    throw py::type_error(std::string(name) + " must be a list, got " + type_name(obj));
  return py::list(obj);
}

void same_length(const py::list& a, const py::list& b, const char* name_a, const char* name_b) {
  if (a.size() != b.size())
    throw py::value_error(std::string(name_b) + " must have " + std::to_string(a.size()) + " entries (as " +
                          name_a + "), got " + std::to_string(b.size()));
}

void adam_apply(py::object variables_obj, py::object gradients_obj, py::object m_obj, py::object v_obj,
                double learning_rate, double beta1, double beta2, double epsilon, int64_t step) {
  py::list vars = as_list(variables_obj, "variables"), grads = as_list(gradients_obj, "gradients");
  py::list ms = as_list(m_obj, "m"), vs = as_list(v_obj, "v");
  same_length(vars, grads, "variables", "gradients");
  same_length(vars, ms, "variables", "m");
  same_length(vars, vs, "variables", "v");
  if (step < 1) throw py::value_error("step must be >= 1, got " + std::to_string(step));
  std::vector<AdamParam<float>> p32;
  std::vector<AdamParam<double>> p64;
  std::vector<py::array> keep;
  for (size_t i = 0; i < vars.size(); ++i) {
    if (grads[i].is_none()) continue;  // TF skips variables without a gradient
    const std::string where = at("grads_and_vars", i);
    py::array var = take_float(vars[i], where, "variable", true);
    py::array grad = take_like(grads[i], var, where, "gradient", false);
    py::array m = take_like(ms[i], var, where, "slot m", true);
    py::array v = take_like(vs[i], var, where, "slot v", true);
    if (is_f32(var))
      p32.push_back({ptr<float>(var), ptr<float>(m), ptr<float>(v), ptr<float>(grad), static_cast<Index>(var.size())});
    else
      p64.push_back({ptr<double>(var), ptr<double>(m), ptr<double>(v), ptr<double>(grad), static_cast<Index>(var.size())});
    keep.insert(keep.end(), {var, grad, m, v});
  }
  const AdamHyper h{learning_rate, beta1, beta2, epsilon};
  py::gil_scoped_release release;
  adam_update<float>(p32, h, step);
  adam_update<double>(p64, h, step);
}

void sgd_apply(py::object variables_obj, py::object gradients_obj, double learning_rate) {
  py::list vars = as_list(variables_obj, "variables"), grads = as_list(gradients_obj, "gradients");
  same_length(vars, grads, "variables", "gradients");
  std::vector<SgdParam<float>> p32;
  std::vector<SgdParam<double>> p64;
  std::vector<py::array> keep;
  for (size_t i = 0; i < vars.size(); ++i) {
    if (grads[i].is_none()) continue;
    const std::string where = at("grads_and_vars", i);
    py::array var = take_float(vars[i], where, "variable", true);
    py::array grad = take_like(grads[i], var, where, "gradient", false);
    if (is_f32(var))
      p32.push_back({ptr<float>(var), ptr<float>(grad), static_cast<Index>(var.size())});
    else
      p64.push_back({ptr<double>(var), ptr<double>(grad), static_cast<Index>(var.size())});
    keep.insert(keep.end(), {var, grad});
  }
  py::gil_scoped_release release;
  sgd_update<float>(p32, learning_rate);
  sgd_update<double>(p64, learning_rate);
}

template <typename T>
py::tuple clip_impl(const py::list& tensors, double clip_norm) {
  py::list clipped;
  std::vector<ClipParam<T>> params;
  std::vector<py::object> keep;  // the inputs, held while the kernel runs without the GIL
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].is_none()) {  // passed through, as TF does
      clipped.append(py::none());
      continue;
    }
    Array<T> in = take<T>(tensors[i], ("tensors[" + std::to_string(i) + "]").c_str(),
                          std::vector<Index>(static_cast<size_t>(py::reinterpret_borrow<py::array>(tensors[i]).ndim()), -1));
    Array<T> out = empty<T>(shape_of(in));
    params.push_back({in.data(), out.mutable_data(), static_cast<Index>(in.size())});
    keep.push_back(in);
    clipped.append(out);
  }
  T norm;
  {
    py::gil_scoped_release release;
    norm = clip_by_global_norm<T>(params, clip_norm);
  }
  Array<T> norm_array = empty<T>({});
  *norm_array.mutable_data() = norm;
  return py::make_tuple(clipped, norm_array);
}

py::tuple clip_global(py::object tensors_obj, double clip_norm) {
  py::list tensors = as_list(tensors_obj, "tensors");
  if (!(clip_norm > 0) || !std::isfinite(clip_norm))
    throw py::value_error("clip_norm must be a finite number > 0, got " + std::to_string(clip_norm));
  py::object first = py::none();
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].is_none()) continue;
    take_float(tensors[i], at("tensors", i), "tensor", false);
    if (first.is_none()) {
      first = tensors[i];
    } else if (!same_dtype(py::reinterpret_borrow<py::array>(tensors[i]).dtype(), py::reinterpret_borrow<py::array>(first).dtype())) {
      throw py::type_error(at("tensors", i) + "every tensor must have the dtype of the first, " +
                           std::string(py::str(py::reinterpret_borrow<py::array>(first).dtype())) + ", got " +
                           std::string(py::str(py::reinterpret_borrow<py::array>(tensors[i]).dtype())));
    }
  }
  if (first.is_none()) throw py::value_error("tensors must hold at least one array");
  return dispatch_float(first, "tensors", [&](auto zero) { return clip_impl<decltype(zero)>(tensors, clip_norm); });
}

}  // namespace

void init_optim(py::module_& m) {
  m.def("adam_apply", &adam_apply,
        "TF1 Adam step `step` (1, 2, ...) on every variable with a gradient, in place: "
        "m += (g - m)(1 - beta1); v += (g² - v)(1 - beta2); "
        "var -= lr_t · m / (sqrt(v) + epsilon), lr_t = lr · sqrt(1 - beta2^t) / (1 - beta1^t). "
        "None gradients are skipped.",
        py::arg("variables"), py::arg("gradients"), py::arg("m"), py::arg("v"), py::arg("learning_rate"),
        py::arg("beta1"), py::arg("beta2"), py::arg("epsilon"), py::arg("step"));
  m.def("sgd_apply", &sgd_apply,
        "var -= learning_rate · g on every variable with a gradient, in place. None gradients are skipped.",
        py::arg("variables"), py::arg("gradients"), py::arg("learning_rate"));
  m.def("clip_by_global_norm", &clip_global,
        "Returns ([t · clip_norm / max(gn, clip_norm)], gn) with gn = sqrt(Σ‖t‖²) (a 0-d array); "
        "None entries pass through; a non-finite gn makes every entry NaN.",
        py::arg("tensors"), py::arg("clip_norm"));
}

}  // namespace rnnkit_py
