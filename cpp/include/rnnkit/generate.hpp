// Text generation in one call: per token, the cell stack's step, the Dense
// head, the softmax with temperature, the top-k cut and the draw.
//
// Letters: S samples (the batch rows), V vocabulary, E embedding depth,
// L tokens to generate.
//
// The draw of sample s at step t uses the uniform u = uniform(seed,
// t * S + s) (random.hpp), so it depends on neither the thread count nor the
// order in which rows are drawn. From the head's float logits z [V]:
//   kept   = every id, or with top_k the k ids of largest z (ties: lower id first)
//   p_i    = exp((double(z_i) - max z) / temperature) for kept ids, 0 for the others
//   cdf_i  = p_0 + ... + p_i, summed in float64 in id order
//   id     = the first i with cdf_i > u * cdf_{V-1}  (should rounding leave
//            none, the last id with p_i > 0)
// greedy: the first id of largest z.
#pragma once

#include "rnnkit/cell_step.hpp"
#include "rnnkit/dense.hpp"
#include "rnnkit/random.hpp"

#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

namespace rnnkit {

struct DrawOptions {
  double temperature = 1.0;  // > 0
  Index top_k = 0;           // 0: every id; else in [1, V]
  bool greedy = false;
  uint64_t seed = 0;
};

// One id drawn from logits z [V] with the uniform u (see the top of this
// file). p: [V] scratch; order: [V] scratch (top_k only). Returns -1 when a
// logit is NaN or the kept probabilities do not sum to a positive finite value.
template <typename T>
Index draw_token(const T* z, Index V, const DrawOptions& opt, double u, double* p, int32_t* order) {
  Index best = 0;
  for (Index i = 0; i < V; ++i) {
    if (std::isnan(z[i])) return -1;
    if (z[i] > z[best]) best = i;
  }
  if (opt.greedy) return best;
  const double top = double(z[best]);
  for (Index i = 0; i < V; ++i) p[i] = std::exp((double(z[i]) - top) / opt.temperature);
  if (opt.top_k > 0 && opt.top_k < V) {
    std::iota(order, order + V, 0);
    const auto before = [z](int32_t a, int32_t b) { return z[a] > z[b] || (z[a] == z[b] && a < b); };
    std::nth_element(order, order + opt.top_k, order + V, before);
    for (Index i = opt.top_k; i < V; ++i) p[order[i]] = 0.0;
  }
  double total = 0.0;
  for (Index i = 0; i < V; ++i) total += p[i];
  if (!(total > 0.0) || !std::isfinite(total)) return -1;
  const double target = u * total;
  double cdf = 0.0;
  Index last_kept = best;
  for (Index i = 0; i < V; ++i) {
    cdf += p[i];
    if (p[i] > 0.0) last_kept = i;
    if (cdf > target) return i;
  }
  return last_kept;
}

// The model whose steps generate() runs: the cell stack, an optional
// embedding in front of it and the Dense head after it.
template <typename T>
struct GenerateModel {
  std::vector<StackLayer<T>>* layers = nullptr;
  const T* embedding = nullptr;  // [V_in, E]; null: ids enter the first cell's token-id path
  Index embedding_rows = 0, embedding_depth = 0;
  const T* head_kernel = nullptr;  // [out, V]
  const T* head_bias = nullptr;    // [V]
  Index V = 0;
};

// Generates L tokens for S samples. first: [S] the ids fed at step 0 (the
// prime's last token); state: the flat state of the whole stack, one [S, w]
// array per part in layer order, read and left as the state after the last
// fed token (step L - 1's input: the last generated token is not fed);
// ids: [S, L] written. Throws std::domain_error when the logits of a step
// are not finite.
template <typename T>
void generate(const GenerateModel<T>& model, Index S, Index L, const DrawOptions& opt, const int32_t* first,
              const std::vector<T*>& state, int64_t* ids) {
  std::vector<StackLayer<T>>& layers = *model.layers;
  const Index V = model.V;
  std::vector<Mat<T>> outputs;  // [S, width] per layer
  std::vector<std::vector<T*>> layer_state;
  size_t part = 0;
  for (auto& layer : layers) {
    outputs.emplace_back(S, layer.cell->output_width());
    std::vector<T*> parts;
    for (size_t k = 0; k < layer.cell->state_widths().size(); ++k) parts.push_back(state[part++]);
    layer_state.push_back(std::move(parts));
  }
  Mat<T> embedded(model.embedding ? S : 0, model.embedding_depth);
  Mat<T> logits(S, V);
  std::vector<int32_t> current(first, first + S), order(static_cast<size_t>(V));
  std::vector<double> p(static_cast<size_t>(V));
  for (Index t = 0; t < L; ++t) {
    SeqInput<T> in;
    if (model.embedding) {
      for (Index s = 0; s < S; ++s)
        embedded.row(s) = CMatMap<T>(model.embedding, model.embedding_rows, model.embedding_depth).row(current[s]);
      in.x = embedded.data();
      in.D = model.embedding_depth;
    } else {
      in.ids = current.data();
      in.D = layers[0].cell->input_depth();
    }
    for (size_t l = 0; l < layers.size(); ++l) {
      layers[l].cell->step(S, in, layer_state[l].data(), outputs[l].data());
      if (layers[l].residual) outputs[l] += CMatMap<T>(in.x, S, in.D);
      in = SeqInput<T>{outputs[l].data(), nullptr, outputs[l].cols()};
    }
    dense_forward<T>(S, in.D, V, in.x, model.head_kernel, model.head_bias, logits.data());
    for (Index s = 0; s < S; ++s) {
      const double u = uniform(opt.seed, static_cast<uint64_t>(t * S + s));
      const Index id = draw_token(&logits(s, 0), V, opt, u, p.data(), order.data());
      if (id < 0)
        throw std::domain_error("the logits of sample " + std::to_string(s) + " at step " + std::to_string(t) +
                                " are not finite (NaN or inf in the model's weights or state?)");
      ids[s * L + t] = id;
      current[s] = static_cast<int32_t>(id);
    }
  }
}

}  // namespace rnnkit
