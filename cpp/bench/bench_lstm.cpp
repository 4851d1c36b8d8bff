// Micro-benchmarks of the LSTM kernels (cpp/include/rnnkit/lstm.hpp):
// one forward step, the fused gate pass, the whole forward (inference and
// training), the backward, and the per-step recurrent GEMM on its own.
//
// Arguments are {B, T, D, H, threads} (the step benchmarks use T = 1). The
// shapes are benchmarks/shapes.py's: char, sampling, DeepBench 1 and 2, big.
#include <algorithm>
#include <chrono>

#include "bench_common.hpp"
#include "rnnkit/lstm.hpp"

namespace rnnkit_bench {
namespace {

using namespace rnnkit;

// A BasicLSTMCell of the given shape with every buffer forward and backward need.
struct LstmSetup {
  LstmConfig cfg;
  SeqLayout seq;
  std::vector<float> kernel, bias, x, c0, m0, outputs, c_final, m_final;
  std::vector<float> gates, c, m_prev, ws, saved_gates;
  std::vector<float> d_out, dc_final, dm_final, dx, dc0, dm0, dk, db;
  std::vector<int32_t> lengths;

  LstmSetup(Index B, Index T, Index D, Index H) {
    cfg.D = D;
    cfg.H = H;
    seq.B = B;
    seq.T = T;
    const Index G = 4 * H, rows = B * T;
    kernel = random_vector(static_cast<size_t>((D + H) * G), 0.05f, 1);
    bias = random_vector(static_cast<size_t>(G), 0.1f, 2);
    x = random_vector(static_cast<size_t>(rows * D), 1.0f, 3);
    c0.assign(static_cast<size_t>(B * H), 0.f);
    m0.assign(static_cast<size_t>(B * H), 0.f);
    outputs.resize(static_cast<size_t>(rows * H));
    c_final.resize(static_cast<size_t>(B * H));
    m_final.resize(static_cast<size_t>(B * H));
    gates.resize(static_cast<size_t>(rows * G));
    c.resize(static_cast<size_t>(rows * H));
    m_prev.resize(static_cast<size_t>(rows * H));
    ws.resize(static_cast<size_t>(rows * G));
    d_out = random_vector(static_cast<size_t>(rows * H), 1.0f, 4);
    dc_final.assign(static_cast<size_t>(B * H), 0.f);
    dm_final.assign(static_cast<size_t>(B * H), 0.f);
    dx.resize(static_cast<size_t>(rows * D));
    dc0.resize(static_cast<size_t>(B * H));
    dm0.resize(static_cast<size_t>(B * H));
    dk.resize(static_cast<size_t>((D + H) * G));
    db.resize(static_cast<size_t>(G));
    lengths.assign(static_cast<size_t>(B), static_cast<int32_t>(T));
  }

  SeqInput<float> input() const { return SeqInput<float>{x.data(), nullptr, cfg.D}; }
  LstmWeights<float> weights() const {
    LstmWeights<float> w;
    w.kernel = kernel.data();
    w.bias = bias.data();
    return w;
  }
  LstmTape<float> tape() {
    LstmTape<float> t;
    t.gates = gates.data();
    t.c = c.data();
    t.m_prev = m_prev.data();
    return t;
  }
  void forward(bool training, const int32_t* seq_lengths = nullptr) {
    forward_with(training ? tape() : LstmTape<float>{}, seq_lengths);
  }
  void forward_with(const LstmTape<float>& t, const int32_t* seq_lengths) {
    lstm_forward<float>(cfg, weights(), seq, input(), seq_lengths, StateMask<float>{}, c0.data(), m0.data(),
                        outputs.data(), c_final.data(), m_final.data(), t, ws.data());
  }
  void backward() {
    LstmGrads<float> g;
    g.kernel = dk.data();
    g.bias = db.data();
    lstm_backward<float>(cfg, weights(), seq, input(), nullptr, StateMask<float>{}, c0.data(), tape(),
                         d_out.data(), dc_final.data(), dm_final.data(), dx.data(), dc0.data(), dm0.data(), g);
  }
  double forward_flops() const {
    return 2.0 * seq.B * seq.T * (cfg.D + cfg.H) * 4.0 * cfg.H;
  }
};

// Shapes {B, T, D, H}: char, DeepBench 1, DeepBench 2, big; threads 1 and 2.
void sequence_args(benchmark::internal::Benchmark* b) {
  const int shapes[][4] = {{32, 50, 65, 128}, {16, 25, 512, 512}, {16, 150, 256, 256}, {32, 50, 1024, 1024}};
  for (const auto& s : shapes)
    for (int threads : {1, 2}) b->Args({s[0], s[1], s[2], s[3], threads});
  b->ArgNames({"B", "T", "D", "H", "threads"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

// Step shapes {B, 1, D, H}: sampling (B = 1), char, big.
void step_args(benchmark::internal::Benchmark* b) {
  const int shapes[][4] = {{1, 1, 65, 256}, {32, 1, 65, 128}, {32, 1, 1024, 1024}};
  for (const auto& s : shapes)
    for (int threads : {1, 2}) b->Args({s[0], s[1], s[2], s[3], threads});
  b->ArgNames({"B", "T", "D", "H", "threads"})->Unit(benchmark::kMicrosecond);
}

LstmSetup setup_from(benchmark::State& state) {
  set_threads(state, static_cast<int>(state.range(4)));
  return LstmSetup(state.range(0), state.range(1), state.range(2), state.range(3));
}

// One inference step: input GEMM + recurrent GEMM + fused gate pass.
void BM_LstmForwardStep(benchmark::State& state) {
  LstmSetup s = setup_from(state);
  for (auto _ : state) {
    s.forward(false);
    benchmark::DoNotOptimize(s.outputs.data());
  }
  set_flops(state, s.forward_flops());
}
BENCHMARK(BM_LstmForwardStep)->Apply(step_args)->UseRealTime();

// The fused gate pass of one step on its own. lstm.hpp has no separate
// entry point for it, so each iteration times the same step twice: once with
// every row past its sequence_length (both GEMMs run, the gate pass is
// skipped) and once with every row live; the difference is the gate pass.
void BM_LstmFusedGates(benchmark::State& state) {
  LstmSetup s = setup_from(state);
  std::vector<int32_t> none(s.lengths.size(), 0);
  using clock = std::chrono::steady_clock;
  for (auto _ : state) {
    auto t0 = clock::now();
    s.forward(false, none.data());
    auto t1 = clock::now();
    s.forward(false, s.lengths.data());
    auto t2 = clock::now();
    benchmark::DoNotOptimize(s.outputs.data());
    const double masked = std::chrono::duration<double>(t1 - t0).count();
    const double live = std::chrono::duration<double>(t2 - t1).count();
    state.SetIterationTime(std::max(live - masked, 0.0));
  }
  state.counters["elements/s"] = benchmark::Counter(
      static_cast<double>(s.seq.B * s.cfg.H), benchmark::Counter::kIsIterationInvariantRate,
      benchmark::Counter::kIs1000);
}
BENCHMARK(BM_LstmFusedGates)->Apply(step_args)->UseManualTime();

// The per-step recurrent product z += m_prev · W_h, [B, H]·[H, 4H], through
// rnnkit::gemm exactly as the step loop calls it.
void BM_LstmRecurrentGemm(benchmark::State& state) {
  LstmSetup s = setup_from(state);
  const Index B = s.seq.B, D = s.cfg.D, H = s.cfg.H, G = 4 * H;
  CMatMap<float> kernel(s.kernel.data(), D + H, G);
  MatMap<float> z(s.ws.data(), B, G);
  CMatMap<float> m(s.m0.data(), B, H);
  for (auto _ : state) {
    gemm(z, m, kernel.bottomRows(H), /*accumulate=*/true);
    benchmark::DoNotOptimize(s.ws.data());
  }
  set_flops(state, 2.0 * B * H * G);
}
BENCHMARK(BM_LstmRecurrentGemm)->Apply(step_args)->UseRealTime();

void BM_LstmForward(benchmark::State& state) {
  LstmSetup s = setup_from(state);
  for (auto _ : state) {
    s.forward(false);
    benchmark::DoNotOptimize(s.outputs.data());
  }
  set_flops(state, s.forward_flops());
}
BENCHMARK(BM_LstmForward)->Apply(sequence_args);

// Forward that records the tape for backward.
void BM_LstmForwardTraining(benchmark::State& state) {
  LstmSetup s = setup_from(state);
  for (auto _ : state) {
    s.forward(true);
    benchmark::DoNotOptimize(s.gates.data());
  }
  set_flops(state, s.forward_flops());
}
BENCHMARK(BM_LstmForwardTraining)->Apply(sequence_args);

// Backward alone. It overwrites the tape's gate buffer with gate gradients,
// so each iteration restores the forward's gates first, outside the timing.
void BM_LstmBackward(benchmark::State& state) {
  LstmSetup s = setup_from(state);
  s.forward(true);
  s.saved_gates = s.gates;
  for (auto _ : state) {
    state.PauseTiming();
    std::copy(s.saved_gates.begin(), s.saved_gates.end(), s.gates.begin());
    state.ResumeTiming();
    s.backward();
    benchmark::DoNotOptimize(s.dk.data());
  }
  set_flops(state, 2.0 * s.forward_flops());
}
BENCHMARK(BM_LstmBackward)->Apply(sequence_args);

// Forward (training) + backward: what one RNN.forward + RNN.backward costs in C++.
void BM_LstmForwardBackward(benchmark::State& state) {
  LstmSetup s = setup_from(state);
  for (auto _ : state) {
    s.forward(true);
    s.backward();
    benchmark::DoNotOptimize(s.dk.data());
  }
  set_flops(state, 3.0 * s.forward_flops());
}
BENCHMARK(BM_LstmForwardBackward)->Apply(sequence_args);

}  // namespace
}  // namespace rnnkit_bench
