// Micro-benchmarks of the BasicRNNCell kernels (cpp/include/rnnkit/basic_rnn.hpp):
// whole-sequence forward and backward at the vanilla-RNN shape.
// Arguments are {B, T, D, H, threads}.
#include <algorithm>

#include "bench_common.hpp"
#include "rnnkit/basic_rnn.hpp"

namespace rnnkit_bench {
namespace {

using namespace rnnkit;

BasicRnnCell tanh_cell(Index D, Index H) {
  const Shape shapes[2] = {{D + H, H}, {H}};
  const OptionValue activation[1] = {double(int(Activation::Tanh))};
  return BasicRnnCell(shapes, activation);
}

struct RnnSetup {
  BasicRnnCell cell;
  CellIo<float> io;
  std::vector<float> kernel, bias, x, h0, outputs, h_final, h, h_prev, ws, saved_h;
  std::vector<float> d_out, dh_final, dx, dh0, dk, db;

  RnnSetup(Index B, Index T, Index D, Index H)
      : cell(tanh_cell(D, H)) {
    io.seq.B = B;
    io.seq.T = T;
    const Index rows = B * T;
    kernel = random_vector(static_cast<size_t>((D + H) * H), 0.05f, 1);
    bias = random_vector(static_cast<size_t>(H), 0.1f, 2);
    x = random_vector(static_cast<size_t>(rows * D), 1.0f, 3);
    io.in = SeqInput<float>{x.data(), nullptr, D};
    h0.assign(static_cast<size_t>(B * H), 0.f);
    outputs.resize(static_cast<size_t>(rows * H));
    h_final.resize(static_cast<size_t>(B * H));
    h.resize(static_cast<size_t>(rows * H));
    h_prev.resize(static_cast<size_t>(rows * H));
    ws.resize(static_cast<size_t>(rows * H));
    d_out = random_vector(static_cast<size_t>(rows * H), 1.0f, 4);
    dh_final.assign(static_cast<size_t>(B * H), 0.f);
    dx.resize(static_cast<size_t>(rows * D));
    dh0.resize(static_cast<size_t>(B * H));
    dk.resize(static_cast<size_t>((D + H) * H));
    db.resize(static_cast<size_t>(H));
  }
  void forward(bool training) {
    const float* vars[2] = {kernel.data(), bias.data()};
    const float* state0[1] = {h0.data()};
    float* state[1] = {h_final.data()};
    float* tape[2] = {h.data(), h_prev.data()};
    cell_forward<BasicRnnCell, float>(cell, vars, io, state0, outputs.data(), state, training ? tape : nullptr,
                                      ws.data());
  }
  void backward() {
    const float* vars[2] = {kernel.data(), bias.data()};
    const float* d_final[1] = {dh_final.data()};
    float* d_state0[1] = {dh0.data()};
    float* tape[2] = {h.data(), h_prev.data()};
    float* grads[2] = {dk.data(), db.data()};
    cell_backward<BasicRnnCell, float>(cell, vars, io, tape, d_out.data(), d_final, dx.data(), d_state0, grads);
  }
  double forward_flops() const { return 2.0 * io.seq.B * io.seq.T * (cell.D + cell.H) * cell.H; }
};

void rnn_args(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 2}) b->Args({64, 100, 256, 512, threads});
  b->ArgNames({"B", "T", "D", "H", "threads"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

RnnSetup setup_from(benchmark::State& state) {
  set_threads(state, static_cast<int>(state.range(4)));
  return RnnSetup(state.range(0), state.range(1), state.range(2), state.range(3));
}

void BM_BasicRnnForward(benchmark::State& state) {
  RnnSetup s = setup_from(state);
  for (auto _ : state) {
    s.forward(false);
    benchmark::DoNotOptimize(s.outputs.data());
  }
  set_flops(state, s.forward_flops());
}
BENCHMARK(BM_BasicRnnForward)->Apply(rnn_args);

void BM_BasicRnnBackward(benchmark::State& state) {
  RnnSetup s = setup_from(state);
  s.forward(true);
  s.saved_h = s.h;
  for (auto _ : state) {
    state.PauseTiming();
    std::copy(s.saved_h.begin(), s.saved_h.end(), s.h.begin());  // backward overwrites h with d z
    state.ResumeTiming();
    s.backward();
    benchmark::DoNotOptimize(s.dk.data());
  }
  set_flops(state, 2.0 * s.forward_flops());
}
BENCHMARK(BM_BasicRnnBackward)->Apply(rnn_args);

}  // namespace
}  // namespace rnnkit_bench
