// Unit tests of the C++ core, independent of Python: kernels against
// straight-line formulas, BPTT against finite differences, thread-count
// independence of the blocked GEMM. Exit status 0 when all checks pass.
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "rnnkit/basic_rnn.hpp"
#include "rnnkit/gemm.hpp"
#include "rnnkit/lstm.hpp"
#include "rnnkit/sequence_ops.hpp"

using namespace rnnkit;

// Under AddressSanitizer an impossible allocation returns null (and so
// throws std::bad_alloc) instead of stopping the process: the tests below
// make allocations fail on purpose.
extern "C" const char* __asan_default_options() { return "allocator_may_return_null=1"; }

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    std::printf("FAIL: %s\n", what.c_str());
  }
}

bool close(double a, double b, double rtol, double atol) { return std::abs(a - b) <= atol + rtol * std::abs(b); }

std::vector<double> random_vector(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> v(n);
  for (double& x : v) x = u(gen);
  return v;
}

double sigm(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// One BasicLSTM step for one row, written from the spec.
void lstm_step_reference(const std::vector<double>& kernel, const std::vector<double>& bias, const double* x,
                         Index D, Index H, double* c, double* h) {
  std::vector<double> z(4 * H);
  for (Index g = 0; g < 4 * H; ++g) {
    double s = bias[g];
    for (Index k = 0; k < D; ++k) s += x[k] * kernel[k * 4 * H + g];
    for (Index k = 0; k < H; ++k) s += h[k] * kernel[(D + k) * 4 * H + g];
    z[g] = s;
  }
  for (Index k = 0; k < H; ++k) {
    const double cn = c[k] * sigm(z[2 * H + k] + 1.0) + sigm(z[k]) * std::tanh(z[H + k]);
    c[k] = cn;
    h[k] = std::tanh(cn) * sigm(z[3 * H + k]);
  }
}

void test_lstm_forward_matches_formula() {
  const Index B = 3, T = 4, D = 5, H = 6;
  LstmConfig cfg;
  cfg.D = D;
  cfg.H = H;
  auto kernel = random_vector((D + H) * 4 * H, 1), bias = random_vector(4 * H, 2), x = random_vector(B * T * D, 3);
  std::vector<double> c0(B * H, 0.0), m0(B * H, 0.0), out(B * T * H), cf(B * H), mf(B * H), ws(B * T * 4 * H);
  LstmWeights<double> w;
  w.kernel = kernel.data();
  w.bias = bias.data();
  SeqLayout seq;
  seq.T = T;
  seq.B = B;
  SeqInput<double> in;
  in.x = x.data();
  in.D = D;
  const int32_t lengths[B] = {4, 2, 0};
  lstm_forward<double>(cfg, w, seq, in, lengths, StateMask<double>{}, c0.data(), m0.data(), out.data(), cf.data(),
                       mf.data(), LstmTape<double>{}, ws.data());
  for (Index b = 0; b < B; ++b) {
    std::vector<double> c(H, 0.0), h(H, 0.0);
    for (Index t = 0; t < T; ++t) {
      const bool live = t < lengths[b];
      if (live) lstm_step_reference(kernel, bias, &x[(b * T + t) * D], D, H, c.data(), h.data());
      for (Index k = 0; k < H; ++k)
        check(close(out[(b * T + t) * H + k], live ? h[k] : 0.0, 1e-12, 1e-14), "lstm output b=" + std::to_string(b));
    }
    for (Index k = 0; k < H; ++k) {
      check(close(cf[b * H + k], c[k], 1e-12, 1e-14), "lstm final c");
      check(close(mf[b * H + k], h[k], 1e-12, 1e-14), "lstm final h");
    }
  }
}

void test_basic_rnn_gradient_matches_finite_differences() {
  const Index B = 2, T = 3, D = 2, H = 3;
  const Shape shapes[2] = {{D + H, H}, {H}};
  const OptionValue activation[1] = {double(int(Activation::Tanh))};
  const BasicRnnCell cell(shapes, activation);
  auto kernel = random_vector((D + H) * H, 4), bias = random_vector(H, 5), x = random_vector(B * T * D, 6);
  auto h0 = random_vector(B * H, 7), w_out = random_vector(B * T * H, 8);
  std::vector<double> zero_h(B * H, 0.0);
  const double* vars[2] = {kernel.data(), bias.data()};
  const double* state0[1] = {h0.data()};
  CellIo<double> io;
  io.seq.T = T;
  io.seq.B = B;
  io.in.x = x.data();
  io.in.D = D;
  auto loss = [&]() {
    std::vector<double> out(B * T * H), hf(B * H), ws(B * T * H);
    double* state[1] = {hf.data()};
    cell_forward<BasicRnnCell, double>(cell, vars, io, state0, out.data(), state, nullptr, ws.data());
    double s = 0;
    for (size_t i = 0; i < out.size(); ++i) s += out[i] * w_out[i];
    return s;
  };
  std::vector<double> out(B * T * H), hf(B * H), h_tape(B * T * H), hp_tape(B * T * H);
  double* state[1] = {hf.data()};
  double* tape[2] = {h_tape.data(), hp_tape.data()};
  cell_forward<BasicRnnCell, double>(cell, vars, io, state0, out.data(), state, tape, nullptr);
  std::vector<double> dx(B * T * D), dh0(B * H), dk((D + H) * H), db(H);
  const double* d_final[1] = {zero_h.data()};
  double* d_state0[1] = {dh0.data()};
  double* grads[2] = {dk.data(), db.data()};
  cell_backward<BasicRnnCell, double>(cell, vars, io, tape, w_out.data(), d_final, dx.data(), d_state0, grads);
  auto numeric = [&](std::vector<double>& v, size_t i) {
    const double old = v[i], eps = 1e-6;
    v[i] = old + eps;
    const double up = loss();
    v[i] = old - eps;
    const double down = loss();
    v[i] = old;
    return (up - down) / (2 * eps);
  };
  for (size_t i = 0; i < kernel.size(); ++i) check(close(dk[i], numeric(kernel, i), 1e-6, 1e-8), "rnn d kernel");
  for (size_t i = 0; i < bias.size(); ++i) check(close(db[i], numeric(bias, i), 1e-6, 1e-8), "rnn d bias");
  for (size_t i = 0; i < x.size(); ++i) check(close(dx[i], numeric(x, i), 1e-6, 1e-8), "rnn d x");
  for (size_t i = 0; i < h0.size(); ++i) check(close(dh0[i], numeric(h0, i), 1e-6, 1e-8), "rnn d h0");
}

Mat<float> random_mat(Index rows, Index cols, std::mt19937& gen) {
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  Mat<float> M(rows, cols);
  for (Index i = 0; i < M.size(); ++i) M.data()[i] = u(gen);
  return M;
}

void test_gemm_is_identical_for_every_thread_count() {
  const Index m = 300, k = 700, n = 260;
  std::mt19937 gen(9);
  const Mat<float> A = random_mat(m, k, gen), Bm = random_mat(k, n, gen);
  Mat<float> one(m, n), two(m, n);
  set_num_threads(1);
  gemm(one, A, Bm);
  set_num_threads(2);
  gemm(two, A, Bm);
  check(one == two, "gemm differs between 1 and 2 threads");
  Mat<float> ref = A * Bm;
  check(one.isApprox(ref, 1e-4f), "gemm differs from Eigen's product");
}

// A product small enough for Eigen's coefficient-based path (a Dense layer
// on one row) has the same bits wherever its output lies in memory.
void test_small_products_do_not_depend_on_the_output_address() {
  std::mt19937 gen(3);
  Mat<double> A(1, 7), B(7, 4);
  for (Index i = 0; i < A.size(); ++i) A.data()[i] = std::uniform_real_distribution<double>(-1, 1)(gen);
  for (Index i = 0; i < B.size(); ++i) B.data()[i] = std::uniform_real_distribution<double>(-1, 1)(gen);
  std::vector<double> buffer(4 + 16);
  MatMap<double> first(buffer.data(), 1, 4);
  gemm(first, A, B);
  const Mat<double> expected = first;
  for (Index offset = 1; offset < 16; ++offset) {
    MatMap<double> moved(buffer.data() + offset, 1, 4);
    gemm(moved, A, B);
    check(moved == expected, "a small product's bits depend on where its output lies");
  }
}

// Every item of parallel_claims runs exactly once, whatever the grain and
// however the threads' shares get taken over (the thread whose share starts
// at 0 is held up, so the other runs out of its own share and takes over).
void test_parallel_claims_cover_each_item_once() {
  set_num_threads(2);
  for (Index n : {0, 1, 2, 7, 64, 1001}) {
    for (Index grain : {1, 3, 64}) {
      std::vector<std::atomic<int>> runs(static_cast<size_t>(n));
      std::atomic<bool> bad_piece{false};
      parallel_claims(n, grain, true, [&](Index begin, Index end) {
        if (end - begin < 1 || end - begin > grain) bad_piece = true;
        if (begin == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // the first share falls behind
        for (Index i = begin; i < end; ++i) runs[static_cast<size_t>(i)].fetch_add(1);
      });
      bool once = true;
      for (auto& r : runs) once = once && r.load() == 1;
      check(!bad_piece, "parallel_claims gave a piece outside [1, grain] items");
      check(once, "parallel_claims ran an item other than once (n = " + std::to_string(n) +
                      ", grain = " + std::to_string(grain) + ")");
    }
  }
}

// Which batches run as per-thread row blocks (common.hpp: batch_blocks): up to
// 512 KiB of weights whenever B >= 16, up to 1 MiB only when every thread gets
// a block, never beyond; blocks are whole 8-row tiles that cover the batch.
void test_batch_blocks_rule() {
#ifdef _OPENMP
  const Index KiB = 1024;
  struct Case {
    int threads;
    Index B, weight_bytes, count, size;
  };
  const Case cases[] = {
      {2, 16, 1024 * KiB, 2, 8},     {2, 16, 1024 * KiB + 4, 1, 16}, {2, 15, 256 * KiB, 1, 15},
      {2, 32, 256 * KiB, 2, 16},     {2, 20, 768 * KiB, 2, 16},      {4, 16, 1024 * KiB, 1, 16},
      {4, 16, 512 * KiB, 2, 8},      {4, 64, 1024 * KiB, 4, 16},     {1, 64, 256 * KiB, 1, 64},
  };
  for (const Case& c : cases) {
    set_num_threads(c.threads);
    const BatchBlocks b = batch_blocks(c.B, c.weight_bytes);
    const std::string what = "batch_blocks(B " + std::to_string(c.B) + ", " + std::to_string(c.weight_bytes) +
                             " bytes) on " + std::to_string(c.threads) + " threads";
    check(b.count == c.count && b.size == c.size, what + ": got " + std::to_string(b.count) + " blocks of " +
                                                      std::to_string(b.size) + " rows");
    Index covered = 0;
    for (Index i = 0; i < b.count; ++i) covered += b.begin(i) == covered ? b.rows(i) : -c.B;
    check(covered == c.B, what + ": blocks do not cover the batch in order");
  }
  set_num_threads(2);
#endif
}

#if RNNKIT_PACKED_GEMM
// The LSTM forward's two step loops, called directly rather than through the
// size rules that choose between them: split by hidden units, and split by
// batch rows as one block or as per-thread blocks, give the same bits, for
// dense inputs and token ids, both layouts, lengths, state dropout, peepholes
// and cell_clip. H is not a multiple of the 32-unit slices.
void test_lstm_unit_split_matches_row_split() {
  set_num_threads(2);
  const Index B = 24, T = 5, D = 7, H = 136, G = 4 * H, rows = B * T;
  LstmConfig cfg;
  cfg.D = D;
  cfg.H = H;
  cfg.peepholes = true;
  cfg.cell_clip = 0.7;
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  auto random = [&](Index n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& e : v) e = u(gen);
    return v;
  };
  const auto kernel = random((D + H) * G), bias = random(G), wi = random(H), wf = random(H), wo = random(H);
  const auto c0 = random(B * H), m0 = random(B * H), x = random(rows * D);
  std::vector<int32_t> ids(static_cast<size_t>(rows)), lengths(static_cast<size_t>(B));
  for (auto& i : ids) i = static_cast<int32_t>(gen() % D);
  for (auto& l : lengths) l = static_cast<int32_t>(gen() % (T + 1));
  std::vector<float> mask(static_cast<size_t>(rows * H));
  for (auto& e : mask) e = gen() % 10 < 3 ? 0.f : 1.f / 0.7f;
  LstmWeights<float> w;
  w.kernel = kernel.data();
  w.bias = bias.data();
  w.w_i_diag = wi.data();
  w.w_f_diag = wf.data();
  w.w_o_diag = wo.data();
  for (bool use_ids : {false, true}) {
    for (bool time_major : {false, true}) {
      SeqLayout seq;
      seq.T = T;
      seq.B = B;
      seq.time_major = time_major;
      SeqInput<float> in;
      in.D = D;
      if (use_ids) in.ids = ids.data();
      else in.x = x.data();
      StateMask<float> state_mask;
      state_mask.data = mask.data();
      // path 0: by units; 1: by rows, one block; 2: by rows, blocks of 8 rows
      std::vector<std::vector<float>> results;
      for (int path = 0; path < 3; ++path) {
        std::vector<float> gates(static_cast<size_t>(rows * G)), out(static_cast<size_t>(rows * H)), c = c0, m = m0,
            tape_c(static_cast<size_t>(rows * H)), tape_m(static_cast<size_t>(rows * H));
        LstmTape<float> tape;
        tape.gates = gates.data();
        tape.c = tape_c.data();
        tape.m_prev = tape_m.data();
        if (!use_ids) {  // lstm_forward projects dense inputs before either loop
          const CMatMap<float> K(kernel.data(), D + H, G);
          project_inputs(MatMap<float>(gates.data(), rows, G), in, rows, K.topRows(D), CRowMap<float>(bias.data(), G));
        }
        if (path == 0) {
          detail::lstm_forward_by_units(cfg, w, seq, in, lengths.data(), state_mask, gates.data(), out.data(),
                                        c.data(), m.data(), tape);
        } else {
          BatchBlocks blocks;
          blocks.B = B;
          blocks.size = path == 1 ? B : 8;
          blocks.count = path == 1 ? 1 : B / 8;
          detail::lstm_forward_by_rows(cfg, w, seq, in, lengths.data(), state_mask, gates.data(), out.data(),
                                       c.data(), m.data(), tape, blocks,
                                       static_cast<const PackedRhs<float>*>(nullptr));
        }
        std::vector<float> all;
        for (const auto* v : {&out, &c, &m, &gates, &tape_c, &tape_m}) all.insert(all.end(), v->begin(), v->end());
        results.push_back(all);
      }
      const std::string what = std::string(use_ids ? "ids" : "dense") + (time_major ? ", time-major" : "");
      check(results[0] == results[1], "LSTM by units and by rows differ (" + what + ")");
      check(results[1] == results[2], "LSTM by rows in one block and in per-thread blocks differ (" + what + ")");
    }
  }
}
#endif

// The packed AVX-512 path (where built) against Eigen's product, on shapes with
// remainders in every dimension and on transposed (strided) operands.
void test_packed_products_match_eigen() {
  std::mt19937 gen(11);
  // {400, 1100, 70}: chunks of A over 1 MiB go to threads in static shares, and 400 rows make two equal chunks.
  const Index shapes[][3] = {{1, 7, 5}, {13, 33, 65}, {40, 100, 31}, {67, 129, 96}, {400, 1100, 70}};
  for (auto& sh : shapes) {
    const Index m = sh[0], k = sh[1], n = sh[2];
    const Mat<float> A = random_mat(m, k, gen), Bt = random_mat(n, k, gen), C0 = random_mat(m, n, gen);
    const Mat<float> ref = C0 + A * Bt.transpose();
    Mat<float> C = C0;
    const PackedRhs<float> packed(Bt.transpose(), 64);  // B given transposed: strided packing
    gemm(C, A, packed, /*accumulate=*/true);
    check(C.isApprox(ref, 1e-5f), "packed product (accumulate) " + std::to_string(m) + "x" + std::to_string(k) + "x" +
                                      std::to_string(n));
    Mat<float> At = A.transpose();  // A given transposed: strided rows
    Mat<float> D(m, n);
    gemm(D, At.transpose(), Bt.transpose());
    check(D.isApprox(A * Bt.transpose(), 1e-5f), "generic product with transposed operands");
    const Mat<float> Brm = Bt.transpose();  // B row-major: packed row by row, or read in place for few rows
    Mat<float> E = C0;
    gemm(E, A, Brm, /*accumulate=*/true);
    check(E.isApprox(ref, 1e-5f), "product with a row-major B " + std::to_string(m) + "x" + std::to_string(k) + "x" +
                                      std::to_string(n));
  }
  // A given transposed is copied into strips of 12 rows. 61 rows: one chunk,
  // a padded last strip; k = 1000 crosses both the 256-deep k blocks and the
  // 768-deep slabs of B. 128 rows by 65 columns (a char model's Dense kernel
  // gradient): two chunks of 64 rows, each ending in a padded strip. The same
  // sums as with A row-major, so the same bits, with one thread or two.
  const Index strip_shapes[][3] = {{61, 1000, 1100}, {128, 1600, 65}};
  for (auto& sh : strip_shapes) {
    const Index m = sh[0], k = sh[1], n = sh[2];
    const Mat<float> At = random_mat(k, m, gen), B = random_mat(k, n, gen);
    const Mat<float> A = At.transpose();
    Mat<float> via_transpose(m, n), row_major(m, n), one_thread(m, n);
    gemm(via_transpose, At.transpose(), B);
    gemm(row_major, A, B);
    set_num_threads(1);
    gemm(one_thread, At.transpose(), B);
    set_num_threads(2);
    const std::string shape = std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n);
    check(via_transpose.isApprox(A * B, 1e-5f), "product with a transposed A " + shape);
    check(via_transpose == row_major, "transposed A changes the product's bits " + shape);
    check(via_transpose == one_thread, "transposed A: one thread and two differ " + shape);
  }
  // The bit checks below are the packed kernel's own: without AVX-512 these
  // products are Eigen's, whose sums round differently with the product's
  // width and its number of rows (any thread count still gives the same bits).
  constexpr bool packed_kernel = RNNKIT_PACKED_GEMM != 0;
  // A last panel of at most 8 columns runs the narrow (8-float) tile, one of
  // at most 16 the one-vector tile: the columns they share get the same bits.
  {
    const Index m = 37, k = 300;
    const Mat<float> A = random_mat(m, k, gen), B = random_mat(k, 80, gen);
    Mat<float> narrow(m, 65), wide(m, 80);
    gemm(narrow, A, PackedRhs<float>(B.leftCols(65), 64));
    gemm(wide, A, PackedRhs<float>(B, 64));
    check(narrow.isApprox(A * B.leftCols(65), 1e-5f), "product with a 1-column last panel");
    check(!packed_kernel || narrow == wide.leftCols(65), "a narrow last panel changes the product's bits");
  }
  // A few rows read B in place; they must give the bits of the packed kernel.
  // (m, k, n): last column chunks narrower than a tile (200, 65, 1, 97 columns) run narrower tiles.
  const Index few_shapes[][3] = {{1, 300, 200}, {1, 256, 65}, {2, 40, 1}, {3, 65, 1024}, {4, 256, 97}};
  for (auto& sh : few_shapes) {
    const Index m = sh[0], k = sh[1], n = sh[2];
    const Mat<float> A = random_mat(m, k, gen), B = random_mat(k, n, gen), C0 = random_mat(m, n, gen);
    Mat<float> in_place = C0, packed = C0;
    gemm(in_place, A, B, /*accumulate=*/true);
    gemm(packed, A, PackedRhs<float>(B, 64), /*accumulate=*/true);
    check(in_place.isApprox(C0 + A * B, 1e-5f), "few-row product " + std::to_string(m) + "x" + std::to_string(k) +
                                                    "x" + std::to_string(n));
    check(!packed_kernel || in_place == packed, "few-row product differs from the packed kernel's bits");
  }
}

// Two products by one B (a kernel gradient's x and state halves against
// dZ, both As transposed) share its packed slabs and give the bits of two
// separate products: k = 1600 by n = 1100 in slabs 768 deep, k = 700 by
// n = 2100 in slabs 256 deep; with 20 rows one half is not packed at all.
void test_shared_rhs_products_match_separate_ones() {
  std::mt19937 gen(13);
  const Index shapes[][4] = {{65, 48, 1600, 1100}, {40, 33, 700, 2100}, {20, 64, 300, 90}};
  for (auto& sh : shapes) {
    const Index m1 = sh[0], m2 = sh[1], k = sh[2], n = sh[3];
    const Mat<float> X = random_mat(k, m1, gen), S = random_mat(k, m2, gen), dZ = random_mat(k, n, gen);
    Mat<float> C1(m1, n), C2(m2, n), R1(m1, n), R2(m2, n);
    gemm_shared_rhs(C1, X.transpose(), C2, S.transpose(), dZ);
    gemm(R1, X.transpose(), dZ);
    gemm(R2, S.transpose(), dZ);
    const std::string shape = std::to_string(m1) + "+" + std::to_string(m2) + "x" + std::to_string(k) + "x" +
                              std::to_string(n);
    check(C1.isApprox(X.transpose() * dZ, 1e-5f) && C2.isApprox(S.transpose() * dZ, 1e-5f),
          "shared-B products " + shape);
    check(C1 == R1 && C2 == R2, "sharing B's slabs changes the products' bits " + shape);
  }
}

void test_reverse_sequence() {
  SeqLayout seq;
  seq.T = 4;
  seq.B = 2;
  const float in[8] = {0, 1, 2, 3, 4, 5, 6, 7};  // [B=2, T=4, W=1]
  float out[8];
  const int32_t lengths[2] = {3, 0};
  reverse_sequence<float>(seq, in, lengths, 1, out);
  const float expected[8] = {2, 1, 0, 3, 4, 5, 6, 7};
  for (int i = 0; i < 8; ++i) check(out[i] == expected[i], "reverse_sequence at " + std::to_string(i));
}

#if RNNKIT_PACKED_GEMM
// A failed allocation leaves a work buffer as it was (the strong guarantee):
// its block is neither freed nor replaced, and the products that use it next
// are right.
void test_failed_growth_keeps_the_buffer() {
  const Index impossible = Index(1) << 50;  // 4 PiB of floats
  packed::AlignedBuffer b;
  b.resize(256);
  float* const before = b.data;
  for (int i = 0; i < 256; ++i) b.data[i] = float(i);
  bool threw = false;
  try {
    b.resize(impossible);
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  check(threw, "AlignedBuffer: an impossible size throws std::bad_alloc");
  check(b.data == before && b.size == 256, "AlignedBuffer: a failed growth keeps the block and its size");
  // Were the block freed, the allocator would hand it out again at once.
  void* probe = Eigen::internal::aligned_malloc(256 * sizeof(float));
  check(probe != before, "AlignedBuffer: a failed growth does not free the block in use");
  Eigen::internal::aligned_free(probe);
  bool intact = true;
  for (int i = 0; i < 256; ++i) intact = intact && b.data[i] == float(i);
  check(intact, "AlignedBuffer: a failed growth keeps the contents");
  check(!b.try_resize(impossible) && b.data == before, "AlignedBuffer::try_resize: false, the buffer unchanged");

  // The thread's buffers behind every float product (B packed in slabs, A
  // copied into strips), each after a failed growth: the products are right.
  std::mt19937 gen(5);
  const Index m = 61, k = 300, n = 70;
  const Mat<float> A = random_mat(m, k, gen), B = random_mat(k, n, gen);
  const Mat<float> At = A.transpose();
  for (auto which : {packed::Scratch::OneOffRhs, packed::Scratch::Strips}) {
    packed::AlignedBuffer& scratch = packed::thread_buffer(which);
    scratch.resize(1024);
    try {
      scratch.resize(impossible);
    } catch (const std::bad_alloc&) {
    }
    Mat<float> C(m, n), D(m, n);
    gemm(C, A, B);
    gemm(D, At.transpose(), B);  // A transposed: copied into strips
    check(C.isApprox(A * B, 1e-5f) && D.isApprox(A * B, 1e-5f),
          "products after a failed growth of a thread's work buffer");
  }
}
#endif

}  // namespace

int main() {
  // The tests set thread counts and check how work splits over them: other
  // processes' load must not lower the count (cpu_load.hpp).
  set_adaptive_threads(false);
  test_lstm_forward_matches_formula();
  test_basic_rnn_gradient_matches_finite_differences();
  test_gemm_is_identical_for_every_thread_count();
  test_small_products_do_not_depend_on_the_output_address();
  test_parallel_claims_cover_each_item_once();
  test_batch_blocks_rule();
  test_packed_products_match_eigen();
  test_shared_rhs_products_match_separate_ones();
#if RNNKIT_PACKED_GEMM
  test_lstm_unit_split_matches_row_split();
#endif
  test_reverse_sequence();
#if RNNKIT_PACKED_GEMM
  test_failed_growth_keeps_the_buffer();
#endif
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "OK", failures);
  return failures ? 1 : 0;
}
