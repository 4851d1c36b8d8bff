// Bindings for generation (rnnkit/generate.hpp) and the counter-based
// uniforms it draws with (rnnkit/random.hpp).
#include "step_cells.hpp"
#include "rnnkit/generate.hpp"
#include "rnnkit/random.hpp"

namespace rnnkit_py {
namespace {

using namespace rnnkit;

// layers: [(kind, weight args, residual)], kind a registered step cell
// (step_cells.hpp); the weight args as the cell passes them to its sequence
// kernel.
template <typename T>
std::vector<StackLayer<T>> stack_of(const py::list& layers) {
  if (layers.size() == 0) throw py::value_error("layers must hold at least one cell, got none");
  std::vector<StackLayer<T>> stack;
  for (size_t i = 0; i < layers.size(); ++i) {
    const py::tuple spec = layers[i].cast<py::tuple>();
    if (spec.size() != 3) throw py::value_error("layers[" + std::to_string(i) + "] must be (kind, args, residual)");
    const std::string kind = spec[0].cast<std::string>();
    const py::tuple args = spec[1].cast<py::tuple>();
    StackLayer<T> layer;
    layer.cell = make_step_cell<T>(kind, args);
    if (!layer.cell) throw py::value_error("layers[" + std::to_string(i) + "]: unknown cell kind '" + kind + "'");
    layer.residual = spec[2].cast<bool>();
    const Index depth = stack.empty() ? -1 : stack.back().cell->output_width();
    if (depth >= 0 && layer.cell->input_depth() != depth)
      throw py::value_error("layers[" + std::to_string(i) + "] has input depth " +
                            std::to_string(layer.cell->input_depth()) + " but receives depth " +
                            std::to_string(depth) + " from layers[" + std::to_string(i - 1) + "]");
    stack.push_back(std::move(layer));
  }
  return stack;
}

template <typename T>
py::tuple generate_impl(const py::list& layers_obj, const py::object& embedding_obj, const py::object& kernel_obj,
                        const py::object& bias_obj, const py::object& first_obj, const py::list& state_obj,
                        Index length, const DrawOptions& opt) {
  std::vector<StackLayer<T>> stack = stack_of<T>(layers_obj);
  GenerateModel<T> model;
  model.layers = &stack;
  const Index depth0 = stack.front().cell->input_depth();
  Index vocab = depth0;
  if (!embedding_obj.is_none()) {
    auto e = take<T>(embedding_obj, "embedding", {-1, depth0});
    model.embedding = e.data();
    model.embedding_rows = vocab = e.shape(0);
    model.embedding_depth = depth0;
  }
  for (size_t i = 0; i < stack.size(); ++i) {
    const Index in_depth = stack[i].cell->input_depth();
    if (stack[i].residual && (in_depth != stack[i].cell->output_width() || (i == 0 && model.embedding == nullptr)))
      throw py::value_error("layers[" + std::to_string(i) + "] is residual: its float input must have the depth " +
                            "of its output (" + std::to_string(stack[i].cell->output_width()) + ")");
  }
  const Index top = stack.back().cell->output_width();
  auto kernel = take<T>(kernel_obj, "head kernel", {top, -1});
  model.V = kernel.shape(1);
  auto bias = take<T>(bias_obj, "head bias", {model.V});
  model.head_kernel = kernel.data();
  model.head_bias = bias.data();
  if (model.V != vocab)
    throw py::value_error("the head gives " + std::to_string(model.V) + " logits but the model takes ids in [0, " +
                          std::to_string(vocab) + "): generation needs them to be the same vocabulary");
  if (opt.top_k < 0 || opt.top_k > model.V)
    throw py::value_error("top_k must lie in [1, " + std::to_string(model.V) + "] (or 0 for all), got " +
                          std::to_string(opt.top_k));
  if (!opt.greedy && !(opt.temperature > 0.0 && std::isfinite(opt.temperature)))
    throw py::value_error("temperature must be a finite number > 0, got " + std::to_string(opt.temperature));
  if (length < 0) throw py::value_error("length must be >= 0, got " + std::to_string(length));

  auto first = take<int32_t>(first_obj, "first", {-1});
  const Index S = first.shape(0);
  check_ids(first.data(), S, vocab, "first");
  std::vector<T*> state;
  for (const auto& layer : stack)
    for (Index w : layer.cell->state_widths()) {
      const size_t k = state.size();
      if (k >= state_obj.size())
        throw py::value_error("state must hold one array per state part, got " + std::to_string(state_obj.size()));
      const std::string name = "state[" + std::to_string(k) + "]";
      state.push_back(take<T>(state_obj[k], name.c_str(), {S, w}).mutable_data());
    }
  if (state.size() != state_obj.size())
    throw py::value_error("state must hold " + std::to_string(state.size()) + " arrays (one per state part), got " +
                          std::to_string(state_obj.size()));
  py::array_t<int64_t> ids({S, length});
  {
    py::gil_scoped_release release;
    generate<T>(model, S, length, opt, first.data(), state, ids.mutable_data());
  }
  return py::make_tuple(ids);
}

}  // namespace

void init_generate(py::module_& m) {
  m.def(
      "generate",
      [](py::list layers, py::object embedding, py::object head_kernel, py::object head_bias, py::object first,
         py::list state, Index length, double temperature, Index top_k, bool greedy, uint64_t seed) {
        DrawOptions opt;
        opt.temperature = temperature;
        opt.top_k = top_k;
        opt.greedy = greedy;
        opt.seed = seed;
        return dispatch_float(head_kernel, "head kernel", [&](auto zero) {
          return generate_impl<decltype(zero)>(layers, embedding, head_kernel, head_bias, first, state, length, opt);
        });
      },
      "Generates `length` ids per sample in one call: per step the cell stack, the Dense head, softmax with "
      "temperature, the top-k cut and the draw (see rnnkit/generate.hpp). layers: [(kind, weight args, "
      "residual)]; embedding: [V, E] or None; head_kernel: [out, V]; head_bias: [V]; first: int32 [S], the ids "
      "fed at step 0; state: the stack's flat state, [S, w] arrays, updated in place to the state after the last "
      "fed token; top_k 0: all. Returns (ids int64 [S, length],).",
      py::arg("layers"), py::arg("embedding"), py::arg("head_kernel"), py::arg("head_bias"), py::arg("first"),
      py::arg("state"), py::arg("length"), py::arg("temperature"), py::arg("top_k"), py::arg("greedy"),
      py::arg("seed"));
  m.def(
      "uniforms",
      [](uint64_t seed, Index n, uint64_t first) {
        if (n < 0) throw py::value_error("n must be >= 0, got " + std::to_string(n));
        py::array_t<double> out(n);
        double* data = out.mutable_data();
        {
          py::gil_scoped_release release;
          uniforms(seed, first, n, data);
        }
        return out;
      },
      "n float64 uniforms in [0, 1): uniform(seed, first + i), SplitMix64's (first + i)-th output of `seed` "
      "(see rnnkit/random.hpp).",
      py::arg("seed"), py::arg("n"), py::arg("first") = 0);
}

}  // namespace rnnkit_py
