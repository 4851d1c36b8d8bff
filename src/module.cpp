// The extension module rnnkit._core: one init_<topic> per binding file.
#include "bind_util.hpp"

namespace rnnkit_py {
void init_cells(py::module_& m);
void init_sequence_ops(py::module_& m);
void init_dense(py::module_& m);
void init_loss(py::module_& m);
void init_optim(py::module_& m);
void init_generate(py::module_& m);
void init_ops(py::module_& m);
}  // namespace rnnkit_py

PYBIND11_MODULE(_core, m) {
  namespace py = pybind11;
  m.doc() = "rnnkit's C++ kernels (Eigen + OpenMP). Use the rnnkit package, not this module.";
  m.def("set_num_threads", [](py::int_ n) {
    // An int of any size: 2**70 is out of range, not a cast error.
    int overflow = 0;
    const long long value = PyLong_AsLongLongAndOverflow(n.ptr(), &overflow);
    const int max = rnnkit::max_num_threads();
    if (overflow != 0 || value < 1 || value > max)
      throw py::value_error("set_num_threads: n must be in [1, " + std::to_string(max) + "] (the most threads this machine's OpenMP " +
                            "runtime is allowed to start for rnnkit), got " + std::string(py::str(n)));
    rnnkit::set_num_threads(static_cast<int>(value));
  }, "Threads used by every kernel, in every thread of the process.", py::arg("n"));
  m.def("get_num_threads", &rnnkit::num_threads_setting, "Threads the kernels use on a quiet machine (process-wide).");
  m.def("threads_in_use", &rnnkit::get_num_threads,
        "Threads the next kernel starts: get_num_threads(), less the CPUs other processes keep busy.");
  m.def("set_adaptive_threads", [](py::object on) {
    if (!py::isinstance<py::bool_>(on)) throw py::type_error("set_adaptive_threads: on must be a bool, got " + rnnkit_py::type_name(on));
    rnnkit::set_adaptive_threads(on.cast<bool>());
  }, "Whether kernels leave busy CPUs to other processes.", py::arg("on"));
  m.def("adaptive_threads", &rnnkit::adaptive_threads, "Whether kernels leave busy CPUs to other processes.");
  m.def("max_num_threads", &rnnkit::max_num_threads, "The largest n that set_num_threads accepts.");
  m.def("_result_cache", [](py::object limit) {
    auto& blocks = rnnkit_py::ResultBlocks::instance();
    if (!limit.is_none()) {
      if (!py::isinstance<py::int_>(limit) || py::isinstance<py::bool_>(limit))
        throw py::type_error("limit must be an int or None, got " + rnnkit_py::type_name(limit));
      const unsigned long long bytes = PyLong_AsUnsignedLongLong(limit.ptr());
      if (bytes == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
        PyErr_Clear();
        throw py::value_error("limit must lie in [0, 2**64 - 1] bytes, got " + std::string(py::str(limit)));
      }
      blocks.set_limit(static_cast<size_t>(bytes));
    }
    return py::make_tuple(blocks.cached(), blocks.limit());
  }, "(bytes of free result blocks kept, the limit); sets the limit first when given (0: keep none).",
        py::arg("limit") = py::none());
  m.attr("arch") = RNNKIT_ARCH;
  m.attr("simd") = Eigen::SimdInstructionSetsInUse();
#ifdef _OPENMP
  m.attr("openmp") = true;
#else
  m.attr("openmp") = false;
#endif
  rnnkit_py::init_cells(m);
  rnnkit_py::init_sequence_ops(m);
  rnnkit_py::init_dense(m);
  rnnkit_py::init_loss(m);
  rnnkit_py::init_optim(m);
  rnnkit_py::init_generate(m);
  rnnkit_py::init_ops(m);
}
