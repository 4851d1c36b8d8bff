// Micro-benchmarks of the training-step kernels around the recurrence:
// sequence_loss forward/backward (loss.hpp), the Dense head (dense.hpp) and
// the Adam update (optim.hpp), at the char model's shape
// (B 32, T 50, C 65, H 128) and the big LSTM's parameter count.
#include "bench_common.hpp"
#include "rnnkit/dense.hpp"
#include "rnnkit/loss.hpp"
#include "rnnkit/optim.hpp"

namespace rnnkit_bench {
namespace {

using namespace rnnkit;

struct LossSetup {
  SequenceLossConfig cfg;
  std::vector<float> logits, weights, loss, probs, ce, d_logits;
  std::vector<int32_t> targets;
  float d_loss = 1.0f;

  LossSetup(Index B, Index T, Index C) {
    cfg = sequence_loss_reduction(true, true, false, false);
    cfg.B = B;
    cfg.T = T;
    cfg.C = C;
    const Index rows = B * T;
    logits = random_vector(static_cast<size_t>(rows * C), 3.0f, 1);
    weights.assign(static_cast<size_t>(rows), 1.0f);
    loss.resize(1);
    probs.resize(static_cast<size_t>(rows * C));
    ce.resize(static_cast<size_t>(rows));
    d_logits.resize(static_cast<size_t>(rows * C));
    targets.resize(static_cast<size_t>(rows));
    for (Index r = 0; r < rows; ++r) targets[static_cast<size_t>(r)] = static_cast<int32_t>((r * 7) % C);
  }
  void forward() {
    sequence_loss_forward<float, int32_t>(cfg, logits.data(), targets.data(), weights.data(), loss.data(),
                                          probs.data(), ce.data());
  }
  void backward() {
    sequence_loss_backward<float, int32_t>(cfg, targets.data(), weights.data(), probs.data(), &d_loss,
                                           d_logits.data());
  }
};

// {B, T, C, threads}
void loss_args(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 2}) b->Args({32, 50, 65, threads});
  b->ArgNames({"B", "T", "C", "threads"})->Unit(benchmark::kMicrosecond)->UseRealTime();
}

void BM_SequenceLossForward(benchmark::State& state) {
  set_threads(state, static_cast<int>(state.range(3)));
  LossSetup s(state.range(0), state.range(1), state.range(2));
  for (auto _ : state) {
    s.forward();
    benchmark::DoNotOptimize(s.loss.data());
  }
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(s.cfg.rows()),
                                                benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
}
BENCHMARK(BM_SequenceLossForward)->Apply(loss_args);

void BM_SequenceLossBackward(benchmark::State& state) {
  set_threads(state, static_cast<int>(state.range(3)));
  LossSetup s(state.range(0), state.range(1), state.range(2));
  s.forward();
  for (auto _ : state) {
    s.backward();
    benchmark::DoNotOptimize(s.d_logits.data());
  }
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(s.cfg.rows()),
                                                benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
}
BENCHMARK(BM_SequenceLossBackward)->Apply(loss_args);

// Dense head [B*T, H]·[H, C]: forward, and backward with dx.
void dense_args(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 2}) b->Args({32 * 50, 128, 65, threads});
  b->ArgNames({"N", "D", "U", "threads"})->Unit(benchmark::kMicrosecond)->UseRealTime();
}

void BM_DenseForward(benchmark::State& state) {
  set_threads(state, static_cast<int>(state.range(3)));
  const Index N = state.range(0), D = state.range(1), U = state.range(2);
  auto x = random_vector(static_cast<size_t>(N * D), 1.0f, 1);
  auto k = random_vector(static_cast<size_t>(D * U), 0.1f, 2);
  auto bias = random_vector(static_cast<size_t>(U), 0.1f, 3);
  std::vector<float> y(static_cast<size_t>(N * U));
  for (auto _ : state) {
    dense_forward<float>(N, D, U, x.data(), k.data(), bias.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
  set_flops(state, 2.0 * N * D * U);
}
BENCHMARK(BM_DenseForward)->Apply(dense_args);

void BM_DenseBackward(benchmark::State& state) {
  set_threads(state, static_cast<int>(state.range(3)));
  const Index N = state.range(0), D = state.range(1), U = state.range(2);
  auto x = random_vector(static_cast<size_t>(N * D), 1.0f, 1);
  auto k = random_vector(static_cast<size_t>(D * U), 0.1f, 2);
  auto dy = random_vector(static_cast<size_t>(N * U), 1.0f, 3);
  std::vector<float> dx(static_cast<size_t>(N * D)), dk(static_cast<size_t>(D * U)), db(static_cast<size_t>(U));
  for (auto _ : state) {
    dense_backward<float>(N, D, U, x.data(), k.data(), dy.data(), dx.data(), dk.data(), db.data());
    benchmark::DoNotOptimize(dk.data());
  }
  set_flops(state, 4.0 * N * D * U);
}
BENCHMARK(BM_DenseBackward)->Apply(dense_args);

// Adam over one model's variables: the char model (LSTM kernel [65 + 128, 512],
// bias, Dense [128, 65], bias) and the big LSTM ([2048, 4096], bias).
void adam_args(benchmark::internal::Benchmark* b) {
  for (int model : {0, 1})
    for (int threads : {1, 2}) b->Args({model, threads});
  b->ArgNames({"big", "threads"})->Unit(benchmark::kMicrosecond)->UseRealTime();
}

void BM_AdamUpdate(benchmark::State& state) {
  set_threads(state, static_cast<int>(state.range(1)));
  const std::vector<Index> sizes = state.range(0) ? std::vector<Index>{2048 * 4096, 4096}
                                                  : std::vector<Index>{(65 + 128) * 512, 512, 128 * 65, 65};
  std::vector<std::vector<float>> var, m, v, g;
  std::vector<AdamParam<float>> params;
  Index total = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const size_t n = static_cast<size_t>(sizes[i]);
    var.push_back(random_vector(n, 0.1f, 10 + static_cast<uint32_t>(i)));
    g.push_back(random_vector(n, 0.01f, 20 + static_cast<uint32_t>(i)));
    m.emplace_back(n, 0.f);
    v.emplace_back(n, 0.f);
    total += sizes[i];
  }
  for (size_t i = 0; i < sizes.size(); ++i)
    params.push_back(AdamParam<float>{var[i].data(), m[i].data(), v[i].data(), g[i].data(), sizes[i]});
  AdamHyper h;
  int64_t step = 0;
  for (auto _ : state) {
    adam_update<float>(params, h, ++step);
    benchmark::DoNotOptimize(var[0].data());
  }
  state.counters["params/s"] = benchmark::Counter(static_cast<double>(total),
                                                  benchmark::Counter::kIsIterationInvariantRate,
                                                  benchmark::Counter::kIs1000);
}
BENCHMARK(BM_AdamUpdate)->Apply(adam_args);

}  // namespace
}  // namespace rnnkit_bench
