// tests/cuda/test_cuda_backend.cpp — backends::Cuda diffed against backends::Reference (the
// scalar spec) op by op and model by model, on the GPU. Without a CUDA device the program prints
// "skipped: no CUDA device" and exits 77, which ctest reports as skipped (label `cuda`): CI
// compiles and links it, the GPU machine runs it (scripts/device_check.sh).
//
// Inputs are random (magnitudes in [0.125, 1), random signs), fresh per case; outputs come back
// with to_host. Tolerances (u(D): f32 2^-24, bf16 2^-8; K a reduction's length):
//   embed, add_inplace, KV appends              bit-identical (the same conversions)
//   rms_norm, rope, glu                         f32: 4·u(f32)·(1 + |ref|) (tree sums, device expf);
//                                               bf16: one bf16 step, 2·u(bf16)·|ref| + 1e-6
//   linear, attend, moe                         f32: 2(K + 4)·u(f32)·Σ|terms| (reordered f32 sums and
//                                               cuBLASLt's blocking; Higham γ_n on both sides);
//                                               bf16 adds one output step, 2·u(bf16)·|ref|
//   models (logits)                             f32: relative L2 ≤ 1e-5; bf16: ≤ 2e-2 (as Cpu vs Reference)
//   greedy text (stories260K, f32)              the first 16 tokens identical to the CPU backend's
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <precis/backends/cuda/backend.hpp>
#include <precis/backends/reference/backend.hpp>
#include <precis/core/cast.hpp>
#include <precis/core/transfer.hpp>
#include <precis/generate/generator.hpp>
#include <precis/nn/sampling.hpp>
#include <precis/text/tokenizer.hpp>
#include <precis/quant/quantize.hpp>
#include <precis/runtime/load_model.hpp>
#include <precis/weights/any_weight.hpp>

#include "support/any_tensor_bytes.hpp"  // io::detail::AnyTensorBytes
#include "unit/backends/backend_diff_support.hpp"  // same_bits, close, weight_of, rel_l2, run_model
#include "unit/backends/backend_test_support.hpp"  // random_tensor, unit_roundoff

namespace be = precis::backends;
namespace pm = precis::models;
using namespace precis;
using namespace precis::test;

namespace {

constexpr double u32 = unit_roundoff<f32>, u16b = unit_roundoff<bf16>;

template <class D, std::size_t R>
Tensor<D, R, host> back(const Tensor<D, R, cuda>& t) {
  return precis::to_host(t);
}

const std::vector<dtype_code> all_formats = {dtype_code::f32,  dtype_code::bf16, dtype_code::f16,       dtype_code::q8_0,
                                             dtype_code::q4_0, dtype_code::q4_1, dtype_code::mxfp4_ggml};

template <class Act>
constexpr double bf16_step = std::same_as<Act, bf16> ? 2 * u16b : 0.0;

}  // namespace

TEMPLATE_TEST_CASE("Cuda vs Reference: embed, rms_norm, rope, glu, add_inplace", "[cuda]", f32, bf16) {
  using Act = TestType;
  be::Cuda gpu;
  be::Reference ref;
  std::mt19937 rng(21);
  const double prel = std::same_as<Act, f32> ? 4 * u32 : 2 * u16b, pabs = std::same_as<Act, f32> ? 4 * u32 : 1e-6;
  SECTION("embed: every format, bit-identical; an id outside the vocabulary is a range_error") {
    std::vector<std::vector<std::byte>> keep;
    const Tensor<f32, 2> master = random_tensor<f32, 2>({40, 64}, rng);
    const std::vector<std::int64_t> ids = {3, 39, 0, 3, 17};
    for (const dtype_code f : all_formats) {
      const AnyWeight w = weight_of(f, master, keep);
      INFO(to_string(f));
      const auto dw = gpu.upload(w);
      CHECK(same_bits(back(gpu.embed<Act>(dw, ids)), ref.embed<Act>(w, ids)));
    }
    const auto dw = gpu.upload(weight_of(dtype_code::f32, master, keep));
    const std::vector<std::int64_t> bad = {1, 40};
    CHECK_THROWS_AS(gpu.embed<Act>(dw, bad), range_error);
  }
  SECTION("rms_norm: both cast orders, rows, a row slice and per-head rows, gains of Act and f32") {
    const Tensor<Act, 2> x = random_tensor<Act, 2>({7, 96}, rng);
    const Tensor<Act, 3> x3 = random_tensor<Act, 3>({5, 4, 32}, rng);
    const Tensor<Act, 1> g = random_tensor<Act, 1>({96}, rng), g3 = random_tensor<Act, 1>({32}, rng);
    const Tensor<f32, 1> g32 = random_tensor<f32, 1>({96}, rng);
    const auto dx = to_device(x);
    const auto dx3 = to_device(x3);
    const auto dg = to_device(g), dg3 = to_device(g3);
    const auto dg32 = to_device(g32);
    const Scalar<f32> eps = Scalar<f32>::from(1e-5);
    CHECK(close(back(gpu.rms_norm<NormThenCast>(dx, dg, eps)), ref.rms_norm<NormThenCast>(x, g, eps), prel, pabs) == "");
    CHECK(close(back(gpu.rms_norm<NormThenCast>(dx3, dg3, eps)), ref.rms_norm<NormThenCast>(x3, g3, eps), prel, pabs) == "");
    CHECK(close(back(gpu.rms_norm<MultiplyThenCast>(dx, dg, eps)), ref.rms_norm<MultiplyThenCast>(x, g, eps), prel, pabs) ==
          "");
    CHECK(close(back(gpu.rms_norm<MultiplyThenCast>(dx, dg32, eps)), ref.rms_norm<MultiplyThenCast>(x, g32, eps), prel,
                pabs) == "");
    CHECK(close(back(gpu.rms_norm<NormThenCast>(dx.cview().slice(0, 6, 7), dg, eps)),
                ref.rms_norm<NormThenCast>(x.cview().slice(0, 6, 7), g, eps), prel, pabs) == "");
    CHECK_THROWS_AS(gpu.rms_norm<NormThenCast>(dx, dg3, eps), shape_error);
  }
  SECTION("rope: both layouts, partial rotary dim, in place") {
    Tensor<i64, 1> pos({6});
    for (index_t t = 0; t < 6; ++t) pos(t) = 3 + 5 * t;
    for (const index_t rd : {64, 32}) {
      const InvFreq inv = InvFreq::standard(10000.0, rd);
      const auto dt = gpu.upload(RopeTable<f32>::from_positions(pos, inv));
      const auto rt = ref.upload(RopeTable<f32>::from_positions(pos, inv));
      const Tensor<Act, 3> x = random_tensor<Act, 3>({6, 3, 64}, rng);
      for (const bool interleaved : {false, true}) {
        auto a = to_device(x);
        Tensor<Act, 3> b = x.clone();
        if (interleaved) {
          gpu.rope<rope_layout::interleaved>(a.view(), dt);
          ref.rope<rope_layout::interleaved>(b.view(), rt);
        } else {
          gpu.rope<rope_layout::half_split>(a.view(), dt);
          ref.rope<rope_layout::half_split>(b.view(), rt);
        }
        INFO((interleaved ? "interleaved" : "half_split") << ", rotary dim " << rd);
        CHECK(close(back(a), b, prel, pabs) == "");
      }
    }
  }
  SECTION("glu: SiLU-gated and clamped SwiGLU") {
    const Tensor<Act, 2> g = random_tensor<Act, 2>({5, 80}, rng), u = random_tensor<Act, 2>({5, 80}, rng);
    const auto dg = to_device(g), du = to_device(u);
    CHECK(close(back(gpu.glu(SiluGate{}, dg, du)), ref.glu(SiluGate{}, g, u), prel, pabs) == "");
    const ClampedSwiglu clamped{Scalar<f32>::from(1.702), Scalar<f32>::from(0.5)};
    CHECK(close(back(gpu.glu(clamped, dg, du)), ref.glu(clamped, g, u), prel, pabs) == "");
  }
  SECTION("add_inplace: bit-identical, contiguous and strided") {
    const Tensor<Act, 2> x = random_tensor<Act, 2>({6, 40}, rng), y = random_tensor<Act, 2>({6, 40}, rng);
    auto a = to_device(x);
    const auto dy = to_device(y);
    Tensor<Act, 2> b = x.clone();
    gpu.add_inplace(a.view(), dy);
    ref.add_inplace(b.view(), y);
    CHECK(same_bits(back(a), b));
    gpu.add_inplace(a.view().slice(1, 0, 20), dy.cview().slice(1, 20, 40));
    ref.add_inplace(b.view().slice(1, 0, 20), y.cview().slice(1, 20, 40));
    CHECK(same_bits(back(a), b));
    Tensor<Act, 2, cuda> wrong({6, 39});
    CHECK_THROWS_AS(gpu.add_inplace(a.view(), wrong), shape_error);
  }
}

TEMPLATE_TEST_CASE("Cuda vs Reference: linear over every weight format, GEMV and GEMM paths, bias, f32 out, q8",
                   "[cuda]", f32, bf16) {
  using Act = TestType;
  be::Cuda gpu;
  be::Reference ref;
  std::mt19937 rng(22);
  std::vector<std::vector<std::byte>> keep;
  const index_t n = 72, k = 160;  // N not a multiple of the 4 rows a GEMV block takes
  const Tensor<f32, 2> master = random_tensor<f32, 2>({n, k}, rng);
  const Tensor<Act, 1> bias = random_tensor<Act, 1>({n}, rng);
  const Tensor<f32, 1> bias32 = random_tensor<f32, 1>({n}, rng);
  const auto dbias = to_device(bias);
  const auto dbias32 = to_device(bias32);
  const double abs32 = 2.0 * (static_cast<double>(k) + 4) * u32 * 2.0 * static_cast<double>(k);
  for (const dtype_code f : all_formats) {
    const AnyWeight w = weight_of(f, master, keep);
    const auto dw = gpu.upload(w);
    for (const index_t m : {1, 3, 8, 9, 37, 130}) {
      const Tensor<Act, 2> x = random_tensor<Act, 2>({m, k}, rng);
      const auto dx = to_device(x);
      for (const auto aq : {activation_quantization::none, activation_quantization::q8_blocks}) {
        INFO(to_string(f) << " weight, m " << m << ", activations " << to_string(aq));
        CHECK(close(back(gpu.linear(dx, dw, aq)), ref.linear(x, w, aq), bf16_step<Act>, abs32) == "");
        CHECK(close(back(gpu.linear(dx, dw, dbias, aq)), ref.linear(x, w, bias, aq), bf16_step<Act>, abs32) == "");
        CHECK(close(back(gpu.template linear<f32>(dx, dw, aq)), ref.template linear<f32>(x, w, aq), 0.0, abs32) == "");
        CHECK(close(back(gpu.template linear<f32>(dx, dw, dbias32, aq)), ref.template linear<f32>(x, w, bias32, aq), 0.0,
                    abs32) == "");
      }
    }
  }
  // The GGUF download formats: random blocks at K = 512 (two K-quant super-blocks per row).
  {
    const index_t kd = 512;
    const Tensor<f32, 2> md = random_tensor<f32, 2>({n, kd}, rng);
    for (const dtype_code f : download_formats) {
      const AnyWeight w = weight_of(f, md, keep);
      const auto dw = gpu.upload(w);
      const double absd = (static_cast<double>(kd) + 4) * u32 * (max_row_abs_sum(ref, w) + 1.0);
      for (const index_t m : {1, 3, 9, 37}) {
        const Tensor<Act, 2> x = random_tensor<Act, 2>({m, kd}, rng);
        const auto dx = to_device(x);
        for (const auto aq : {activation_quantization::none, activation_quantization::q8_blocks}) {
          INFO(to_string(f) << " weight, m " << m << ", activations " << to_string(aq));
          CHECK(close(back(gpu.linear(dx, dw, dbias, aq)), ref.linear(x, w, bias, aq), bf16_step<Act>, absd) == "");
          CHECK(close(back(gpu.template linear<f32>(dx, dw, aq)), ref.template linear<f32>(x, w, aq), 0.0, absd) == "");
        }
      }
    }
  }
  Tensor<Act, 2, cuda> bad({2, k + 32});
  const auto dw = gpu.upload(weight_of(dtype_code::f32, master, keep));
  CHECK_THROWS_AS(gpu.linear(bad, dw, activation_quantization::none), shape_error);
}

TEMPLATE_TEST_CASE("Cuda vs Reference: attend over the paged pool (prefill, decode, batches, windows, sinks, splits)",
                   "[cuda]", f32, bf16) {
  using Act = TestType;
  be::Cuda gpu;
  be::Reference ref;
  std::mt19937 rng(23);
  const index_t H = 8, Hkv = 2, D = 64;
  // Layer 0 full, layer 1 sliding (window 5), layer 2 sliding with a window longer than any sequence.
  const KvLayerPlan plan(std::vector<index_t>{0, 5, 4096});
  const PagedKvSize size{.n_kv_heads = Hkv, .head_dim = D, .page_size = 4, .n_pages = 400, .max_sequences = 3,
                         .max_append = 700};
  auto gc = gpu.make_kv_cache<Act>(plan, size);
  auto rc = ref.make_kv_cache<Act>(plan, size);
  // The device cache stores the compute dtype only: another cache type is refused at load.
  CHECK(gc.format() == KvCacheFormat{native_kv_format<Act>(), native_kv_format<Act>()});
  CHECK_NOTHROW(gpu.make_kv_cache<Act>(plan, size, gc.format()));
  CHECK_THROWS_WITH(gpu.make_kv_cache<Act>(plan, size, KvCacheFormat{KvFormat::q8_0, KvFormat::q8_0}),
                    Catch::Contains("CUDA backend stores the KV cache as") && Catch::Contains("k q8_0, v q8_0"));
  const Tensor<f32, 1> sinks = random_tensor<f32, 1>({H}, rng);
  const auto dsinks = to_device(sinks);
  const auto cfg = [&](index_t l) {
    return AttentionConfig{.n_heads = H, .n_kv_heads = Hkv, .head_dim = D,
                           .sliding_window = l == 0 ? 0 : (l == 1 ? 5 : 4096)};
  };
  const double abs32 = 2.0 * static_cast<double>(D + 4) * u32 * static_cast<double>(D);
  std::vector<KvSeqId> gs, rs;
  for (int s = 0; s < 3; ++s) {
    gs.push_back(gc.add_sequence());
    rs.push_back(rc.add_sequence());
  }
  // Prefill lengths 9, 6 and 600 (the long one makes decode split the key range).
  const index_t lens[3] = {9, 6, 600};
  for (int s = 0; s < 3; ++s) {
    const index_t t = lens[s];
    const Tensor<Act, 3> q = random_tensor<Act, 3>({t, H, D}, rng), k = random_tensor<Act, 3>({t, Hkv, D}, rng),
                         v = random_tensor<Act, 3>({t, Hkv, D}, rng);
    const auto dq = to_device(q), dk = to_device(k), dv = to_device(v);
    for (index_t l = 0; l < 3; ++l) {
      const std::span<const KvSeqId> g1(&gs[static_cast<std::size_t>(s)], 1), r1(&rs[static_cast<std::size_t>(s)], 1);
      INFO("prefill sequence " << s << ", layer " << l);
      // bf16 prefills of >= 16 rows run on the tensor cores: P enters P·V as bf16 (attention_tc.cuh).
      const double tc = std::same_as<Act, bf16> && t >= 16 ? u16b : 0.0;
      if (l == 0)
        CHECK(close(back(gpu.attend(gc, l, g1, dq, dk, dv, cfg(l))), ref.attend(rc, l, r1, q, k, v, cfg(l)), bf16_step<Act>,
                    abs32 + tc) == "");
      else
        CHECK(close(back(gpu.attend(gc, l, g1, dq, dk, dv, cfg(l), dsinks)), ref.attend(rc, l, r1, q, k, v, cfg(l), sinks),
                    bf16_step<Act>, abs32 + tc) == "");
    }
  }
  for (int step = 0; step < 4; ++step) {
    const Tensor<Act, 3> q = random_tensor<Act, 3>({3, H, D}, rng), k = random_tensor<Act, 3>({3, Hkv, D}, rng),
                         v = random_tensor<Act, 3>({3, Hkv, D}, rng);
    const auto dq = to_device(q), dk = to_device(k), dv = to_device(v);
    for (index_t l = 0; l < 3; ++l) {
      INFO("batched decode step " << step << ", layer " << l);
      CHECK(close(back(gpu.attend(gc, l, gs, dq, dk, dv, cfg(l), dsinks)), ref.attend(rc, l, rs, q, k, v, cfg(l), sinks),
                  bf16_step<Act>, abs32) == "");
    }
    // One decode step of the long sequence alone: a single (query, head) grid, split over 600+ keys.
    const Tensor<Act, 3> q1 = random_tensor<Act, 3>({1, H, D}, rng), k1 = random_tensor<Act, 3>({1, Hkv, D}, rng),
                         v1 = random_tensor<Act, 3>({1, Hkv, D}, rng);
    const auto dq1 = to_device(q1), dk1 = to_device(k1), dv1 = to_device(v1);
    for (index_t l = 0; l < 3; ++l) {
      INFO("decode of the long sequence, step " << step << ", layer " << l);
      const std::span<const KvSeqId> g1(&gs[2], 1), r1(&rs[2], 1);
      CHECK(close(back(gpu.attend(gc, l, g1, dq1, dk1, dv1, cfg(l))), ref.attend(rc, l, r1, q1, k1, v1, cfg(l)),
                  bf16_step<Act>, abs32) == "");
    }
  }
  for (int s = 0; s < 3; ++s)
    for (index_t l = 0; l < 3; ++l) CHECK(gc.length(gs[static_cast<std::size_t>(s)], l) == rc.length(rs[static_cast<std::size_t>(s)], l));
  // A ring read with the wrong window is the host caches' config_error.
  const Tensor<Act, 3> q = random_tensor<Act, 3>({1, H, D}, rng), k = random_tensor<Act, 3>({1, Hkv, D}, rng);
  const auto dq = to_device(q), dk = to_device(k);
  const std::span<const KvSeqId> g0(&gs[0], 1);
  CHECK_THROWS_AS(gpu.attend(gc, 1, g0, dq, dk, dk, cfg(0)), config_error);
}

// The tensor-core prefill (bf16, one sequence, >= 16 rows): chunks that start mid-page and read
// the previous chunk's keys, GQA, head dims 64 and 128, causal and a 40-token window, with and
// without sinks, row counts not a multiple of the 64-row block or the 16-key tile. Tolerance:
// the SIMT kernel's (one bf16 output step, f32 sums) plus u(bf16)·max|v| = 2^-8 absolute for the
// bf16 probabilities in P·V (|v| < 1 here).
TEST_CASE("Cuda vs Reference: tensor-core prefill attention (bf16)", "[cuda]") {
  be::Cuda gpu;
  be::Reference ref;
  std::mt19937 rng(29);
  for (const index_t D : {index_t{64}, index_t{128}}) {
    const index_t H = 8, Hkv = 2;
    const KvLayerPlan plan(std::vector<index_t>{0, 40});
    const PagedKvSize size{.n_kv_heads = Hkv, .head_dim = D, .page_size = 16, .n_pages = 64, .max_sequences = 1,
                           .max_append = 200};
    auto gc = gpu.make_kv_cache<bf16>(plan, size);
    auto rc = ref.make_kv_cache<bf16>(plan, size);
    const KvSeqId gs = gc.add_sequence(), rs = rc.add_sequence();
    const Tensor<f32, 1> sinks = random_tensor<f32, 1>({H}, rng);
    const auto dsinks = to_device(sinks);
    const double abs = 2.0 * static_cast<double>(D + 4) * u32 * static_cast<double>(D) + u16b;
    for (const index_t chunk : {index_t{100}, index_t{77}, index_t{16}}) {
      const Tensor<bf16, 3> q = random_tensor<bf16, 3>({chunk, H, D}, rng), k = random_tensor<bf16, 3>({chunk, Hkv, D}, rng),
                            v = random_tensor<bf16, 3>({chunk, Hkv, D}, rng);
      const auto dq = to_device(q), dk = to_device(k), dv = to_device(v);
      for (index_t l = 0; l < 2; ++l) {
        const AttentionConfig cfg{.n_heads = H, .n_kv_heads = Hkv, .head_dim = D, .sliding_window = l == 0 ? 0 : 40};
        INFO("D " << D << ", chunk " << chunk << ", layer " << l);
        if (l == 0)
          CHECK(close(back(gpu.attend(gc, l, std::span(&gs, 1), dq, dk, dv, cfg)),
                      ref.attend(rc, l, std::span(&rs, 1), q, k, v, cfg), 2 * u16b, abs) == "");
        else
          CHECK(close(back(gpu.attend(gc, l, std::span(&gs, 1), dq, dk, dv, cfg, dsinks)),
                      ref.attend(rc, l, std::span(&rs, 1), q, k, v, cfg, sinks), 2 * u16b, abs) == "");
      }
    }
  }
}

TEMPLATE_TEST_CASE("Cuda vs Reference: route and moe (orders, formats, interleaved gpt-oss experts, skewed routing)",
                   "[cuda]", f32, bf16) {
  using Act = TestType;
  be::Cuda gpu;
  be::Reference ref;
  std::mt19937 rng(24);
  const index_t E = 6, I = 32, Hd = 64, k = 2;
  std::vector<std::vector<std::byte>> keep;
  const auto stack = [&](const Tensor<f32, 3>& t, dtype_code f) {
    std::vector<std::byte> bytes;
    if (f == dtype_code::f32) {
      bytes.resize(t.bytes());
      std::memcpy(bytes.data(), t.data(), t.bytes());
    } else {
      const auto q = quantize<q8_0>(t);
      bytes.resize(q.bytes());
      std::memcpy(bytes.data(), q.blocks(), q.bytes());
    }
    keep.push_back(std::move(bytes));
    return AnyExpertStack::stacked(io::detail::AnyTensorBytes::make("experts", f, {t.extent(0), t.extent(1), t.extent(2)},
                                                 std::span<const std::byte>(keep.back()), "test"));
  };
  const Tensor<f32, 3> gate = random_tensor<f32, 3>({E, I, Hd}, rng), up = random_tensor<f32, 3>({E, I, Hd}, rng),
                       down = random_tensor<f32, 3>({E, Hd, I}, rng), gu = random_tensor<f32, 3>({E, 2 * I, Hd}, rng);
  const LayerExpertSelector none;
  const BoundLayerSelector sel(none, 0);
  const double abs32 = 4.0 * static_cast<double>(Hd + I + 8) * u32 * static_cast<double>(Hd * I);
  for (const index_t T : {1, 5, 8, 9, 40}) {
    const Tensor<Act, 2> x = random_tensor<Act, 2>({T, Hd}, rng);
    const auto dx = to_device(x);
    Tensor<f32, 2> logits = random_tensor<f32, 2>({T, E}, rng);
    for (const dtype_code f : {dtype_code::f32, dtype_code::q8_0}) {
      const auto ex = AnyMoeExperts<SiluGate, Act>::separate_gate_up(SiluGate{}, stack(gate, f), stack(up, f), stack(down, f));
      const auto dex = gpu.upload(ex);
      for (const bool softmax_first : {true, false}) {
        const auto dl = to_device(logits);
        const be::CudaRouting rg = softmax_first ? gpu.route(SoftmaxThenTopK{.norm_topk_prob = true}, dl, k, sel)
                                                 : gpu.route(TopKThenSoftmax{}, dl, k, sel);
        const Routing rr = softmax_first ? ref.route(SoftmaxThenTopK{.norm_topk_prob = true}, logits, k, sel)
                                         : ref.route(TopKThenSoftmax{}, logits, k, sel);
        INFO("T " << T << ", " << to_string(f) << ", " << (softmax_first ? "SoftmaxThenTopK" : "TopKThenSoftmax"));
        REQUIRE_FALSE(rg.host.has_value());  // routed on the device
        // The same experts (random logits: no near ties); weights within the expf/std::exp ulps.
        CHECK(same_bits(back(rg.experts), rr.experts));
        CHECK(close(back(rg.weights), rr.weights, 8 * u32, 0.0) == "");
        // T ≤ 8: the device-routed expert GEMVs; more: grouped on the host. Both vs the reference.
        CHECK(close(back(gpu.moe(dex, dx, rg)), ref.moe(ex, x, rr), bf16_step<Act>, abs32) == "");
        CHECK(close(back(gpu.moe(dex, dx, rr)), ref.moe(ex, x, rr), bf16_step<Act>, abs32) == "");
      }
    }
    // gpt-oss: interleaved gate_up with biases and the clamped SwiGLU; expert 4 takes every token.
    const Tensor<Act, 2> gub = random_tensor<Act, 2>({E, 2 * I}, rng), db = random_tensor<Act, 2>({E, Hd}, rng);
    const ClampedSwiglu clamped{Scalar<f32>::from(1.702), Scalar<f32>::from(0.75)};
    const auto ex = AnyMoeExperts<ClampedSwiglu, Act>::interleaved_gate_up(clamped, stack(gu, dtype_code::f32),
                                                                            stack(down, dtype_code::f32), gub.clone(),
                                                                            db.clone());
    const auto dex = gpu.upload(ex);
    for (index_t t = 0; t < T; ++t) logits(t, 4) = 50.0f;
    const Routing r = ref.route(TopKThenSoftmax{}, logits, k, sel);
    INFO("T " << T << ", interleaved, skewed");
    CHECK(close(back(gpu.moe(dex, dx, r)), ref.moe(ex, x, r), bf16_step<Act>, abs32) == "");
    const be::CudaRouting rd = gpu.route(TopKThenSoftmax{}, to_device(logits), k, sel);
    CHECK(close(back(gpu.moe(dex, dx, rd)), ref.moe(ex, x, r), bf16_step<Act>, abs32) == "");
  }
}

// A Q4_K_M file's MoE layers: gate/up in one format, down in another (llama.cpp writes Q6_K down
// experts under Q4_K gate/up on the layers its use_more_bits rule picks). Random blocks at
// H = I = 256 (one super-block per row); device-routed GEMVs (T <= 8) and host-grouped GEMMs.
TEMPLATE_TEST_CASE("Cuda vs Reference: moe with the down experts in their own format", "[cuda]", f32, bf16) {
  using Act = TestType;
  be::Cuda gpu;
  be::Reference ref;
  std::mt19937 rng(25);
  const index_t E = 4, I = 256, Hd = 256, k = 2;
  std::vector<std::vector<std::byte>> keep;
  const auto stack = [&](dtype_code f, index_t n, index_t kk) {
    AnyExpertStack out;
    visit_ggml_block_format(f, [&]<class F>() {
      if constexpr (std::same_as<F, mxfp4_ggml>) {
        FAIL("no random-block filler for MXFP4 in this test");
      } else {
      QuantTensor<F, 3> q(extents_t<3>{E, n, kk});
      fill_random_download_blocks(q, rng, -12, -9);
      std::vector<std::byte> bytes(static_cast<std::size_t>(q.bytes()));
      std::memcpy(bytes.data(), q.blocks(), bytes.size());
      keep.push_back(std::move(bytes));
      out = AnyExpertStack::stacked(io::detail::AnyTensorBytes::make("experts", f, {E, n, kk},
                                                                     std::span<const std::byte>(keep.back()), "test"));
      }
    });
    return out;
  };
  const LayerExpertSelector none;
  const BoundLayerSelector sel(none, 0);
  // f32: summation order only; bf16: h and the output rounded to bf16 (a flipped rounding of h
  // moves an output by about one bf16 step).
  const double tol = std::same_as<Act, f32> ? 1e-5 : 1.5e-2;
  for (const auto& [gf, df] : {std::pair{dtype_code::q4_K, dtype_code::q6_K}, std::pair{dtype_code::q5_K, dtype_code::q8_0},
                               std::pair{dtype_code::iq4_xs, dtype_code::q5_0}}) {
    const auto ex = AnyMoeExperts<SiluGate, Act>::separate_gate_up(SiluGate{}, stack(gf, I, Hd), stack(gf, I, Hd),
                                                                    stack(df, Hd, I));
    const auto dex = gpu.upload(ex);
    for (const index_t T : {1, 5, 9, 40}) {
      const Tensor<Act, 2> x = random_tensor<Act, 2>({T, Hd}, rng);
      const Tensor<f32, 2> logits = random_tensor<f32, 2>({T, E}, rng);
      const Routing rr = ref.route(SoftmaxThenTopK{.norm_topk_prob = true}, logits, k, sel);
      const be::CudaRouting rg = gpu.route(SoftmaxThenTopK{.norm_topk_prob = true}, to_device(logits), k, sel);
      const Tensor<f32, 2> want = cast<f32>(ref.moe(ex, x, rr));
      INFO(ex.formats() << ", T " << T);
      CHECK(rel_l2(cast<f32>(back(gpu.moe(dex, to_device(x), rg))), want) < tol);
      CHECK(rel_l2(cast<f32>(back(gpu.moe(dex, to_device(x), rr))), want) < tol);
    }
  }
}

// Selectors that are data route on the device with the host's selection; a selector that is code
// routes on the host; routing errors surface at the next synchronisation, naming the token.
TEST_CASE("Cuda vs Reference: route with selector tables (bias, mask, per layer), code selectors, errors", "[cuda]") {
  be::Cuda gpu;
  be::Reference ref;
  std::mt19937 rng(31);
  const index_t T = 7, E = 128, k = 8;
  const Tensor<f32, 2> logits = random_tensor<f32, 2>({T, E}, rng);
  const auto dl = to_device(logits);
  ExpertScoreTable t0, t1;
  std::uniform_real_distribution<float> b(-0.01f, 0.01f);
  for (index_t e = 0; e < E; ++e) {
    t0.bias.push_back(b(rng));
    t1.allowed.push_back(e % 3 == 0 ? 0 : 1);
  }
  const LayerExpertSelector tables = LayerExpertSelector::from_tables({t0, t1});
  const LayerExpertSelector code = [](index_t, index_t row, std::span<float> s) { s[static_cast<std::size_t>(row)] += 1.0f; };
  for (const index_t layer : {0, 1, 2}) {
    const BoundLayerSelector sel(tables, layer);
    for (const bool softmax_first : {true, false}) {
      INFO("layer " << layer << (softmax_first ? ", SoftmaxThenTopK" : ", TopKThenSoftmax"));
      const be::CudaRouting rg = softmax_first ? gpu.route(SoftmaxThenTopK{.norm_topk_prob = false}, dl, k, sel)
                                               : gpu.route(TopKThenSoftmax{}, dl, k, sel);
      const Routing rr = softmax_first ? ref.route(SoftmaxThenTopK{.norm_topk_prob = false}, logits, k, sel)
                                       : ref.route(TopKThenSoftmax{}, logits, k, sel);
      REQUIRE_FALSE(rg.host.has_value());
      CHECK(same_bits(back(rg.experts), rr.experts));
      CHECK(close(back(rg.weights), rr.weights, 8 * u32, 0.0) == "");
      if (layer == 1)
        for (index_t t = 0; t < T; ++t)
          for (index_t j = 0; j < k; ++j) CHECK(rr.experts(t, j) % 3 != 0);
    }
  }
  const be::CudaRouting rc = gpu.route(TopKThenSoftmax{}, dl, k, BoundLayerSelector(code, 0));
  REQUIRE(rc.host.has_value());
  CHECK(same_bits(rc.host->experts, ref.route(TopKThenSoftmax{}, logits, k, BoundLayerSelector(code, 0)).experts));

  const LayerExpertSelector none;
  Tensor<f32, 2> bad = logits.clone();
  bad(5, 17) = std::numeric_limits<float>::quiet_NaN();
  (void)gpu.route(TopKThenSoftmax{}, to_device(bad), k, BoundLayerSelector(none, 0));
  CHECK_THROWS_WITH(gpu.synchronize(), Catch::Contains("token 5") && Catch::Contains("NaN"));
  gpu.synchronize();  // the error was reported once and cleared
  ExpertScoreTable most;
  for (index_t e = 0; e < E; ++e) most.allowed.push_back(e < 3 ? 1 : 0);
  const LayerExpertSelector few = on_every_layer(most);
  (void)gpu.route(SoftmaxThenTopK{}, dl, k, BoundLayerSelector(few, 3));
  CHECK_THROWS_WITH(gpu.synchronize(), Catch::Contains("fewer experts than k"));
  CHECK_THROWS_AS(gpu.route(TopKThenSoftmax{}, dl, E + 1, BoundLayerSelector(none, 0)), range_error);
}

namespace {

/// Logits [B, V] on a grid of 1/8 (many exact ties) in [-6, 6); row 2 has −inf entries (V > 5).
Tensor<f32, 2> tied_logits(index_t B, index_t V, std::mt19937& rng) {
  Tensor<f32, 2> l({B, V});
  std::uniform_int_distribution<int> grid(-48, 47);
  for (index_t b = 0; b < B; ++b)
    for (index_t v = 0; v < V; ++v)
      l(b, v) = (b % 3 == 2 && v % 5 == 0 && V > 5) ? -std::numeric_limits<float>::infinity()
                                                    : static_cast<float>(grid(rng)) / 8.0f;
  return l;
}

}  // namespace

// The device chain against sampling::sample_rows (the spec) for the same drawn requests. Tokens
// must be identical: greedy and the penalties are exact; the draws' double sums differ from the
// host's only in rounding, which moves a token only when u lands within ~1e-15 of a cumulative
// boundary (never, for these 1/8-grid logits and random u).
TEST_CASE("Cuda vs Reference: sample (greedy, penalties, top-k, top-p, min-p, temperature, padding, NaN)",
          "[cuda][sampling]") {
  be::Cuda gpu;
  std::mt19937 rng(77);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  const std::vector<std::int32_t> history = {5, 5, 9, 0, 3, 5, 11, 9, 2, 6, 6, 6, 1};
  struct Cfg {
    const char* name;
    sampling::SamplerParams p;
  };
  std::vector<Cfg> cfgs;
  cfgs.push_back({"greedy", {.temperature = 0.0f}});
  cfgs.push_back({"greedy + penalties", {.temperature = 0.0f, .repetition_penalty = 1.3f, .frequency_penalty = 0.25f,
                                         .presence_penalty = 0.5f, .penalty_last_n = -1}});
  cfgs.push_back({"plain draw", {.temperature = 1.0f}});
  cfgs.push_back({"temperature 0.7", {.temperature = 0.7f}});
  cfgs.push_back({"min-p 0.05, T 1.3", {.temperature = 1.3f, .min_p = 0.05f}});
  cfgs.push_back({"top-k 40", {.temperature = 1.0f, .top_k = 40}});
  cfgs.push_back({"top-k 1", {.temperature = 0.8f, .top_k = 1}});
  cfgs.push_back({"top-p 0.9", {.temperature = 1.0f, .top_p = 0.9f}});
  cfgs.push_back({"llama.cpp defaults", {.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
                                         .repetition_penalty = 1.1f, .penalty_last_n = 8}});
  cfgs.push_back({"top-k past vocab, top-p, penalties", {.temperature = 0.6f, .top_k = 1 << 20, .top_p = 0.5f,
                                                         .repetition_penalty = 0.9f, .frequency_penalty = -0.5f}});
  for (const index_t V : {index_t{1}, index_t{13}, index_t{1000}, index_t{8191}, index_t{151936}}) {
    const index_t B = 3;
    const Tensor<f32, 2> host = tied_logits(B, V, rng);
    const Tensor<f32, 2, cuda> dev = to_device(host);
    const std::vector<std::int32_t> hist = [&] {
      std::vector<std::int32_t> h;
      for (const std::int32_t t : history)
        if (t < std::min<index_t>(V, V > 100 ? V - 50 : V)) h.push_back(t);
      return h;
    }();
    for (const Cfg& c : cfgs) {
      if (V == 1 && c.p.top_k == (1 << 20)) continue;
      int mismatches = 0;
      for (int rep = 0; rep < 12; ++rep) {
        std::vector<sampling::SampleRequest> reqs;
        for (index_t b = 0; b < B; ++b) {
          sampling::SamplerChain chain(c.p);
          sampling::SampleRequest r = chain.request(hist, b == 1 && V > 100 ? V - 50 : 0);  // row 1: padded vocab
          if (c.p.temperature != 0.0f) r.u = uni(rng);
          reqs.push_back(r);
        }
        const std::vector<sampling::SampleOutcome> want = sampling::sample_rows(host, reqs);
        const std::vector<sampling::SampleOutcome> got = gpu.sample(dev, reqs);
        REQUIRE(got.size() == want.size());
        for (std::size_t b = 0; b < got.size(); ++b) {
          if (got[b].token != want[b].token || got[b].bad_id != want[b].bad_id) {
            ++mismatches;
            WARN(c.name << ", V " << V << ", row " << b << ", u " << reqs[b].u << ": device " << got[b].token << ", host "
                        << want[b].token);
          }
          if (b == 1 && V > 100) CHECK(got[b].token < V - 50);
        }
      }
      INFO(c.name << ", V " << V);
      CHECK(mismatches == 0);
    }
  }
  SECTION("the first NaN or +inf of a row is reported (over the whole row, padding included); all -inf is an error") {
    Tensor<f32, 2> host = tied_logits(2, 500, rng);
    host(0, 480) = std::numeric_limits<float>::quiet_NaN();
    host(0, 490) = std::numeric_limits<float>::infinity();
    host(1, 7) = std::numeric_limits<float>::infinity();
    sampling::SamplerChain chain({.temperature = 0.0f});
    const std::vector<sampling::SampleRequest> reqs = {chain.request({}, 400), chain.request({}, 400)};
    const std::vector<sampling::SampleOutcome> got = gpu.sample(to_device(host), reqs);
    CHECK(got[0].bad_id == 480);
    CHECK(std::isnan(got[0].bad_logit));
    CHECK(got[1].bad_id == 7);
    CHECK(got[1].token == -1);
    Tensor<f32, 2> dead({1, 64});
    for (index_t v = 0; v < 64; ++v) dead(0, v) = -std::numeric_limits<float>::infinity();
    sampling::SamplerChain draw({.temperature = 1.0f});
    const std::vector<sampling::SampleRequest> one = {draw.request({})};
    CHECK_THROWS_WITH(gpu.sample(to_device(dead), one), Catch::Contains("every remaining logit is -inf"));
  }
}

namespace {

std::vector<std::int64_t> greedy(pm::CausalLM& lm, std::vector<std::int64_t> prompt, int n) {
  const auto s = lm.new_sequence();
  std::vector<std::int64_t> out;
  Tensor<f32, 2> l = lm.forward_last(s, prompt);
  for (int i = 0; i < n; ++i) {
    index_t best = 0;
    for (index_t j = 1; j < l.extent(1); ++j)
      if (l(0, j) > l(0, best)) best = j;
    out.push_back(best);
    const std::int64_t tok = best;
    l = lm.forward_last(s, std::span<const std::int64_t>(&tok, 1));
  }
  return out;
}

}  // namespace

TEST_CASE("Cuda vs Reference: every fixture model gives the same logits (prefill and decode)", "[cuda][models]") {
  const std::filesystem::path dir = std::filesystem::path(PRECIS_FIXTURES_DIR) / "models";
  for (const char* m : {"llama", "llama/model.gguf", "llama_untied_bf16", "qwen3_moe", "qwen3_moe/model.gguf", "gpt_oss",
                        "gpt_oss/model.gguf", "qwen3_omni_thinker"})
    for (const pm::precision p : {pm::precision::f32, pm::precision::bf16}) {
      INFO(m << ", " << pm::to_string(p));
      pm::LoadOptions o;
      o.max_context = 16;
      o.backend = pm::backend_kind::cuda;
      const auto gpu = pm::load_model(dir / m, p, o);
      o.backend = pm::backend_kind::reference;
      const auto ref = pm::load_model(dir / m, p, o);
      const std::vector<std::int64_t> prompt = {1, 7, 3, 11, 5}, next = {2, 9, 4};
      CHECK(rel_l2(run_model(*gpu, prompt, next), run_model(*ref, prompt, next)) <= (p == pm::precision::f32 ? 1e-5 : 2e-2));
    }
}

TEST_CASE("Cuda vs Cpu: greedy tokens of stories260K are identical for 16 tokens", "[cuda][models]") {
  const std::filesystem::path model = std::filesystem::path(PRECIS_SHARED_DATA_DIR) / "models" / "stories260K.gguf";
  if (!std::filesystem::exists(model)) {
    WARN("skipped: " << model << " not found");
    return;
  }
  pm::LoadOptions o;
  o.max_context = 64;
  const auto cpu = pm::load_model(model, pm::precision::f32, o);
  o.backend = pm::backend_kind::cuda;
  const auto gpu = pm::load_model(model, pm::precision::f32, o);
  const std::vector<std::int64_t> prompt = {1, 403, 407, 261, 378};
  CHECK(greedy(*gpu, prompt, 16) == greedy(*cpu, prompt, 16));
}

// Generation samples on the device (Generator → decode_batch_sampled → Cuda::sample): greedy and
// seeded sampling give the CPU's text. (Sampled text can differ only if the backends' logits
// straddle a cumulative boundary: f32 logits agree to ~1e-6 relative here.)
TEST_CASE("Cuda vs Cpu: generated text of stories260K, greedy and seeded sampling, batch of 3", "[cuda][models]") {
  const std::filesystem::path model = std::filesystem::path(PRECIS_SHARED_DATA_DIR) / "models" / "stories260K.gguf";
  if (!std::filesystem::exists(model)) {
    WARN("skipped: " << model << " not found");
    return;
  }
  pm::LoadOptions o;
  o.max_context = 128;
  o.max_sequences = 3;
  const auto cpu = pm::load_model(model, pm::precision::f32, o);
  o.backend = pm::backend_kind::cuda;
  const auto gpu = pm::load_model(model, pm::precision::f32, o);
  const text::Tokenizer tok = text::Tokenizer::from_gguf(model);
  const std::vector<std::string> prompts = {"Once upon a time", "The little dog", "Lily and Tom went"};
  for (const sampling::SamplerParams& p :
       {sampling::SamplerParams{.temperature = 0.0f},
        sampling::SamplerParams{.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
                                .repetition_penalty = 1.1f, .seed = 7},
        sampling::SamplerParams{.temperature = 1.0f, .seed = 11}}) {
    generate::GenerateOptions opt;
    opt.max_new_tokens = 32;
    opt.sampling = p;
    generate::Generator gc(*cpu, tok), gg(*gpu, tok);
    const generate::BatchResult rc = gc.generate_batch(prompts, opt), rg = gg.generate_batch(prompts, opt);
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      INFO("prompt " << i << ", temperature " << p.temperature);
      CHECK(rg.results[i].tokens == rc.results[i].tokens);
    }
  }
}

int main(int argc, char* argv[]) {
  bool listing = false;
  for (int i = 1; i < argc; ++i) listing = listing || std::strncmp(argv[i], "--list", 6) == 0;
  if (!listing && !precis::cuda_rt::device_available()) {
    std::printf("skipped: no CUDA device\n");
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
