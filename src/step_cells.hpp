// Step cells (cpp/include/rnnkit/cell_step.hpp) for generation, by kind: the
// cell's name in rnnkit._core, with the arguments a Python cell passes to
// its sequence kernel. Each binding registers its cells' factories.
#pragma once

#include "bind_util.hpp"
#include "rnnkit/cell_step.hpp"

#include <map>
#include <memory>
#include <string>

namespace rnnkit_py {

template <typename T>
using StepCellFactory = std::unique_ptr<rnnkit::StepCell<T>> (*)(const py::tuple& args);

struct StepCellKind {
  StepCellFactory<float> f32 = nullptr;
  StepCellFactory<double> f64 = nullptr;
};

// Filled while the module initialises, read with the GIL held.
inline std::map<std::string, StepCellKind>& step_cell_kinds() {
  static std::map<std::string, StepCellKind> kinds;
  return kinds;
}

inline void register_step_cell(const std::string& kind, StepCellFactory<float> f32, StepCellFactory<double> f64) {
  step_cell_kinds()[kind] = StepCellKind{f32, f64};
}

// The step cell of `kind` built from args; null for a kind nobody registered.
template <typename T>
std::unique_ptr<rnnkit::StepCell<T>> make_step_cell(const std::string& kind, const py::tuple& args) {
  const auto it = step_cell_kinds().find(kind);
  if (it == step_cell_kinds().end()) return nullptr;
  if constexpr (std::is_same_v<T, float>)
    return it->second.f32(args);
  else
    return it->second.f64(args);
}

}  // namespace rnnkit_py
