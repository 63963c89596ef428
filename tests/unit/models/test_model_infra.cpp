// tests/unit/models/test_model_infra.cpp — the model layer's shared infrastructure:
// models/model_config.hpp (config.json fields, both RoPE spellings, Qwen3-Omni nesting),
// weights/any_weight.hpp (AnyWeight; the Cpu and Reference backends' linear and embed for every stored format), models/weight_source.hpp
// and the loaders' error paths (every message names the tensor or key), load_model's model
// selection, and zero-copy loading (weights are read inside the file mapping).
//
// Tolerance for linear vs float64 (f32 output): the kernels accumulate K products in f32 and may
// regroup a block's terms (q4_1 as d·Σx·q + m·Σx), so |ŷ − y| ≤ γ_{2K+4}·Σ_k |x_k|·(|w_k| + c_b)
// with c_b the block's |min| (0 for other formats), γ_n = n·u/(1 − n·u), u = 2^-24. A bf16
// activation's output adds one rounding, u(bf16)·|y| = 2^-8·|y|. A wrong block, scale or nibble order moves a
// value by at least one quantization step, orders of magnitude above the bound.
#include <catch2/catch.hpp>  // TEST_CASE, SECTION, CHECK, REQUIRE, Catch::Contains

#include <algorithm>   // std::max
#include <cmath>       // std::fabs
#include <cstddef>     // std::byte
#include <cstdint>     // std::int64_t
#include <cstring>     // std::memcpy
#include <filesystem>  // std::filesystem::path
#include <limits>      // std::numeric_limits
#include <span>        // std::span
#include <string>      // std::string
#include <vector>      // std::vector

#include <nlohmann/json.hpp>  // nlohmann::json

#include <precis/core/error.hpp>           // config_error, shape_error, dtype_error, range_error, format_error
#include <precis/backends/cpu/backend.hpp>        // backends::Cpu
#include <precis/backends/reference/backend.hpp>  // backends::Reference
#include <precis/weights/any_weight.hpp>  // AnyWeight, embed_rows
#include <precis/weights/any_experts.hpp>  // activation_tensor, narrowed_activation_tensor
#include <precis/models/llama.hpp>         // Llama, LlamaConfig
#include <precis/runtime/load_model.hpp>    // load_model, model_registry
#include <precis/models/model_config.hpp>  // HfConfig, rope_from_hf
#include <precis/quant/dequantize.hpp>     // dequantize
#include <precis/quant/quantize.hpp>       // quantize

#include "support/any_tensor_bytes.hpp"       // io::detail::AnyTensorBytes (hand-made tensors)
#include "unit/models/test_llama_support.hpp"  // random_llama, TempDir
#include "unit/nn/nn_test_support.hpp"         // random_tensor, make_rng, to_f64

using namespace precis;
using namespace precis::test;
namespace pm = precis::models;
using Catch::Matchers::Contains;

namespace {

[[nodiscard]] pm::HfConfig config(const char* text) { return pm::HfConfig::from_json(nlohmann::json::parse(text), "test/config.json"); }

/// The message of the exception `f` throws as E (fails the test if it throws nothing or another type).
template <class E, class F>
[[nodiscard]] std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  FAIL("expected an exception");
  return {};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// config.json
// ---------------------------------------------------------------------------------------------

TEST_CASE("HfConfig: transformers 4.x rope_theta + rope_scaling", "[models][config]") {
  SECTION("no scaling") {
    const auto c = config(R"({"rope_theta": 500000.0, "rope_scaling": null})");
    const pm::RopeSpec r = pm::rope_from_hf(c, 64, 10000.0, 2048);
    CHECK(r.theta == 500000.0);
    CHECK(r.rotary_dim == 64);
    CHECK(std::holds_alternative<rope_scaling::none>(r.scaling));
    CHECK(r.layout == rope_layout::half_split);
    CHECK(!r.mrope);
  }
  SECTION("the model's default base when the file names none") {
    CHECK(pm::rope_from_hf(config("{}"), 64, 10000.0, 2048).theta == 10000.0);
  }
  SECTION("linear, legacy `type` key") {
    const auto r = pm::rope_from_hf(config(R"({"rope_scaling": {"type": "linear", "factor": 4.0}})"), 32, 1e4, 2048);
    REQUIRE(std::holds_alternative<rope_scaling::linear>(r.scaling));
    CHECK(std::get<rope_scaling::linear>(r.scaling).factor == 4.0);
  }
  SECTION("YaRN as gpt-oss ships it (truncate false) gives model-semantics §1.6's inv_freq") {
    const auto c = config(R"({"rope_theta": 150000, "max_position_embeddings": 131072,
        "rope_scaling": {"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                         "truncate": false, "original_max_position_embeddings": 4096}})");
    const auto r = pm::rope_from_hf(c, 64, 1e4, 131072);
    REQUIRE(std::holds_alternative<rope_scaling::yarn>(r.scaling));
    const auto& y = std::get<rope_scaling::yarn>(r.scaling);
    CHECK(y.bounds == yarn_bounds::exact);
    CHECK(y.original_max_position == 4096);
    const InvFreq inv = r.inv_freq();
    CHECK(inv.values()(9) == Approx(3.170569618e-02).epsilon(1e-6));
    CHECK(inv.values()(17) == Approx(1.293187012e-04).epsilon(1e-6));
    CHECK(inv.attention_factor() == Approx(1.34657359027997).epsilon(1e-7));
  }
  SECTION("YaRN defaults: truncate true, original length from max_position_embeddings") {
    const auto r = pm::rope_from_hf(config(R"({"rope_scaling": {"rope_type": "yarn", "factor": 4}})"), 64, 1e4, 8192);
    const auto& y = std::get<rope_scaling::yarn>(r.scaling);
    CHECK(y.bounds == yarn_bounds::rounded);
    CHECK(y.original_max_position == 8192);
    CHECK(y.beta_fast == 32.0);
  }
  SECTION("llama3") {
    const auto r = pm::rope_from_hf(config(R"({"rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3",
        "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}})"),
                                    128, 1e4, 131072);
    REQUIRE(std::holds_alternative<rope_scaling::llama3>(r.scaling));
    CHECK(std::get<rope_scaling::llama3>(r.scaling).high_freq_factor == 4.0);
  }
  SECTION("partial rotary") {
    CHECK(pm::rope_from_hf(config(R"({"partial_rotary_factor": 0.5})"), 64, 1e4, 2048).rotary_dim == 32);
  }
}

TEST_CASE("HfConfig: transformers 5.x rope_parameters", "[models][config]") {
  const auto r = pm::rope_from_hf(
      config(R"({"rope_parameters": {"rope_type": "linear", "rope_theta": 50000.0, "factor": 2.0,
                                     "partial_rotary_factor": 0.25}})"),
      64, 1e4, 2048);
  CHECK(r.theta == 50000.0);
  CHECK(r.rotary_dim == 16);
  CHECK(std::get<rope_scaling::linear>(r.scaling).factor == 2.0);
  SECTION("a top-level rope_theta that agrees is fine (the fixtures write both)") {
    CHECK(pm::rope_from_hf(config(R"({"rope_theta": 5e4, "rope_scaling": null,
                                      "rope_parameters": {"rope_type": "default", "rope_theta": 5e4}})"),
                           64, 1e4, 2048)
              .theta == 5e4);
  }
  SECTION("one that disagrees is refused, naming both keys") {
    const auto msg = message_of<config_error>([] {
      (void)pm::rope_from_hf(config(R"({"rope_theta": 1e4, "rope_parameters": {"rope_type": "default", "rope_theta": 5e4}})"),
                             64, 1e4, 2048);
    });
    CHECK_THAT(msg, Contains("'rope_theta'") && Contains("'rope_parameters.rope_theta'") && Contains("disagree"));
  }
  SECTION("rope_scaling and rope_parameters both set must say the same (transformers 5 writes both)") {
    const auto r2 = pm::rope_from_hf(config(R"({"rope_scaling": {"type": "linear", "factor": 2.0},
                                                "rope_parameters": {"rope_type": "linear", "factor": 2.0}})"),
                                     64, 1e4, 2048);
    CHECK(std::get<rope_scaling::linear>(r2.scaling).factor == 2.0);
    CHECK_THAT(message_of<config_error>([] {
                 (void)pm::rope_from_hf(config(R"({"rope_scaling": {"rope_type": "linear", "factor": 4.0},
                                                   "rope_parameters": {"rope_type": "linear", "factor": 2.0}})"),
                                        64, 1e4, 2048);
               }),
               Contains("'rope_scaling.factor' in 'test/config.json' = 4.0") && Contains("'rope_parameters.factor'") &&
                   Contains("disagree"));
  }
}

TEST_CASE("HfConfig: Qwen3-Omni's thinker_config.text_config is unwrapped", "[models][config]") {
  const auto c = config(R"({"model_type": "qwen3_omni_moe", "architectures": ["Qwen3OmniMoeForConditionalGeneration"],
      "thinker_config": {"text_config": {"hidden_size": 2048, "head_dim": 128, "rope_theta": 1000000,
          "rope_scaling": {"rope_type": "default", "mrope_section": [24, 20, 20], "interleaved": true,
                           "mrope_interleaved": true}}}})");
  CHECK(c.prefix() == "thinker_config.text_config.");
  CHECK(c.model_type() == "qwen3_omni_moe");
  CHECK(c.get<index_t>("hidden_size") == 2048);
  const auto r = pm::rope_from_hf(c, 128, 1e4, 32768);
  CHECK(r.theta == 1e6);
  REQUIRE(r.mrope);
  REQUIRE(std::holds_alternative<mrope::interleaved>(*r.mrope));
  CHECK(std::get<mrope::interleaved>(*r.mrope).section == std::array<index_t, 3>{24, 20, 20});
  // Errors name the key as written in the file, with its nesting.
  CHECK_THAT(message_of<config_error>([&] { (void)c.positive("num_hidden_layers"); }),
             Contains("'thinker_config.text_config.num_hidden_layers'") && Contains("test/config.json"));
  SECTION("chunked MRoPE (Qwen2-VL's type \"mrope\")") {
    const auto r2 = pm::rope_from_hf(config(R"({"rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}})"),
                                     128, 1e4, 32768);
    REQUIRE(r2.mrope);
    CHECK(std::holds_alternative<mrope::chunked>(*r2.mrope));
    CHECK(std::holds_alternative<rope_scaling::none>(r2.scaling));
  }
}

TEST_CASE("HfConfig: bad values are config_errors naming the key", "[models][config]") {
  CHECK_THAT(message_of<config_error>([] { (void)config(R"({"num_hidden_layers": "2"})").positive("num_hidden_layers"); }),
             Contains("'num_hidden_layers'") && Contains("must be an integer"));
  CHECK_THAT(message_of<config_error>([] { (void)config(R"({"num_hidden_layers": 0})").positive("num_hidden_layers"); }),
             Contains("must be ≥ 1"));
  CHECK_THAT(message_of<config_error>([] { (void)config("{}").get<double>("rms_norm_eps"); }),
             Contains("missing required key 'rms_norm_eps'"));
  CHECK(config(R"({"n": 4.0})").get<index_t>("n") == 4);  // integral floats are integers
  CHECK_THROWS_AS(config(R"({"n": 4.5})").get<index_t>("n"), config_error);
  CHECK_THROWS_AS(pm::HfConfig::from_json(nlohmann::json::array(), "x"), config_error);

  CHECK_THAT(message_of<config_error>([] {
               (void)pm::rope_from_hf(config(R"({"rope_scaling": {"rope_type": "dynamic", "factor": 2}})"), 64, 1e4, 2048);
             }),
             Contains("'rope_scaling.rope_type'") && Contains("dynamic") && Contains("\"llama3\""));
  CHECK_THAT(message_of<config_error>([] {
               (void)pm::rope_from_hf(config(R"({"rope_scaling": {"rope_type": "linear"}})"), 64, 1e4, 2048);
             }),
             Contains("'rope_scaling.factor'"));
  CHECK_THAT(message_of<config_error>([] {
               (void)pm::rope_from_hf(config(R"({"rope_scaling": {"rope_type": "yarn", "factor": 4, "mscale": 0.7}})"),
                                      64, 1e4, 2048);
             }),
             Contains("'rope_scaling.mscale'"));
  CHECK_THAT(message_of<config_error>([] {
               (void)pm::rope_from_hf(config(R"({"rope_scaling": {"mrope_section": [16, 24, 20]}})"), 128, 1e4, 2048);
             }),
             Contains("'rope_scaling.mrope_section'") && Contains("rotary_dim / 2 = 64"));
  CHECK_THROWS_AS(pm::rope_from_hf(config(R"({"rope_theta": 0.5})"), 64, 1e4, 2048), config_error);
  CHECK_THROWS_AS(pm::rope_from_hf(config(R"({"partial_rotary_factor": 1.5})"), 64, 1e4, 2048), config_error);
}

// ---------------------------------------------------------------------------------------------
// AnyWeight
// ---------------------------------------------------------------------------------------------

namespace {

/// A stored weight [N, K] in one format, its bytes kept by the test, and its exact values.
struct StoredWeight {
  std::vector<std::byte> bytes, scales;  // scales: the HF MXFP4 scale plane
  std::vector<double> values;            // [N·K] what the stored weight means
  std::vector<double> block_min;         // [N·K/32] |m| of q4_1 blocks, else 0
  dtype_code code;
};

template <class F>
[[nodiscard]] StoredWeight quantized(const Tensor<f32, 2>& w) {
  StoredWeight s;
  const QuantTensor<F, 2> q = quantize<F>(w.cview());
  const Tensor<f32, 2> deq = dequantize<f32>(q.view());
  s.values = to_f64(deq);
  s.code = dtype_traits<F>::code;
  s.block_min.assign(static_cast<std::size_t>(q.num_blocks()), 0.0);
  if constexpr (std::same_as<F, mxfp4>) {
    const auto nb = static_cast<std::size_t>(q.num_blocks());
    s.bytes.resize(nb * 16);
    s.scales.resize(nb);
    std::memcpy(s.bytes.data(), q.nibbles(), nb * 16);
    std::memcpy(s.scales.data(), q.scales(), nb);
  } else {
    s.bytes.resize(q.bytes());
    std::memcpy(s.bytes.data(), q.blocks(), q.bytes());
    if constexpr (std::same_as<F, q4_1>)
      for (index_t b = 0; b < q.num_blocks(); ++b)
        s.block_min[static_cast<std::size_t>(b)] = std::fabs(static_cast<double>(static_cast<float>(q.blocks()[b].m)));
  }
  return s;
}

template <class D>
[[nodiscard]] StoredWeight floating(const Tensor<f32, 2>& w) {
  StoredWeight s;
  const Tensor<D, 2> t = cast<D>(w);
  s.values = to_f64(t);
  s.code = dtype_traits<D>::code;
  s.block_min.assign(static_cast<std::size_t>(w.numel() / 32), 0.0);
  s.bytes.resize(t.bytes());
  std::memcpy(s.bytes.data(), t.data(), t.bytes());
  return s;
}

[[nodiscard]] AnyWeight any_weight(const StoredWeight& s, index_t n, index_t k) {
  if (s.code == dtype_code::mxfp4)
    return AnyWeight::from_mxfp4(io::detail::AnyTensorBytes::make("w_blocks", dtype_code::u8, {n, k / 32, 16}, s.bytes, "test"),
                                     io::detail::AnyTensorBytes::make("w_scales", dtype_code::u8, {n, k / 32}, s.scales, "test"));
  return AnyWeight::from(io::detail::AnyTensorBytes::make("w", s.code, {n, k}, s.bytes, "test"));
}

template <class Act, class Backend>
void check_linear(const StoredWeight& s, index_t n, index_t k, index_t m) {
  Backend be;
  constexpr auto exact = activation_quantization::none;
  INFO("backend " << Backend::name());
  auto rng = make_rng(7);
  const Tensor<Act, 2> x = random_tensor<Act, 2>({m, k}, rng);
  const AnyWeight w = any_weight(s, n, k);
  REQUIRE(w.rows() == n);
  REQUIRE(w.cols() == k);
  CHECK(w.format() == s.code);
  const Tensor<Act, 2> y = be.linear(x, w, exact);                  // [M, N], Act
  const Tensor<f32, 2> y32 = be.template linear<f32>(x, w, exact);   // [M, N], declared f32
  const std::vector<double> xv = to_f64(x), yv = to_f64(y), y32v = to_f64(y32);
  const double u = 0x1p-24, gamma = (2.0 * static_cast<double>(k) + 4) * u / (1 - (2.0 * static_cast<double>(k) + 4) * u);
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      double ref = 0, mag = 0;
      for (index_t kk = 0; kk < k; ++kk) {
        const double xe = xv[static_cast<std::size_t>(i * k + kk)], we = s.values[static_cast<std::size_t>(j * k + kk)];
        ref += xe * we;
        mag += std::fabs(xe) * (std::fabs(we) + s.block_min[static_cast<std::size_t>((j * k + kk) / 32)]);
      }
      const double tol32 = gamma * mag;
      const double tol = tol32 + (std::same_as<Act, f32> ? 0.0 : 0x1p-8 * std::fabs(ref));
      const auto at = static_cast<std::size_t>(i * n + j);
      INFO(to_string(s.code) << " weight, " << dtype_name<Act> << " x, m " << m << ": y(" << i << ", " << j << ")");
      CHECK(std::fabs(y32v[at] - ref) <= tol32);
      CHECK(std::fabs(yv[at] - ref) <= tol + tol32);
    }

  // The named opt-in: activations quantized to 8-bit blocks (d = amax/127 per 32 values) before
  // block-quantized weights. It moves each product by at most Σ_b (d_b/2)(1 + 2^-15)·Σ_{k∈b}|w_k|
  // (backends/cpu/q8_activation.hpp); float weights ignore it (bit-identical to the exact path).
  const Tensor<f32, 2> yq = be.template linear<f32>(x, w, activation_quantization::q8_blocks);
  const bool block_format = s.code != dtype_code::f32 && s.code != dtype_code::bf16 && s.code != dtype_code::f16;
  if (!block_format) {
    CHECK(std::memcmp(yq.data(), y32.data(), y32.bytes()) == 0);
    return;
  }
  const std::vector<double> yqv = to_f64(yq);
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      double ref = 0, mag = 0, qerr = 0;
      for (index_t b = 0; b < k / 32; ++b) {
        double amax = 0, wsum = 0;
        for (index_t kk = b * 32; kk < b * 32 + 32; ++kk) {
          const double xe = xv[static_cast<std::size_t>(i * k + kk)], we = s.values[static_cast<std::size_t>(j * k + kk)];
          ref += xe * we;
          mag += std::fabs(xe) * (std::fabs(we) + s.block_min[static_cast<std::size_t>((j * k + kk) / 32)]);
          amax = std::max(amax, std::fabs(xe));
          wsum += std::fabs(we);
        }
        qerr += amax / 127.0 / 2.0 * (1.0 + 0x1p-15) * wsum;
      }
      INFO(to_string(s.code) << " weight, q8 activations from " << dtype_name<Act> << ", m " << m << ": y(" << i << ", "
                             << j << ")");
      CHECK(std::fabs(yqv[static_cast<std::size_t>(i * n + j)] - ref) <= qerr * (1 + 1e-6) + gamma * mag * 2);
    }
}

}  // namespace

TEST_CASE("AnyWeight: linear on the Cpu and Reference backends equals the float64 matmul of the stored weight, every format",
          "[models][any_weight][backends]") {
  const index_t n = 24, k = 96;
  auto rng = make_rng(3);
  const Tensor<f32, 2> w = random_tensor<f32, 2>({n, k}, rng);
  const std::vector<StoredWeight> formats = {floating<f32>(w),    floating<bf16>(w),   floating<f16>(w),
                                             quantized<q8_0>(w),  quantized<q4_0>(w),  quantized<q4_1>(w),
                                             quantized<mxfp4_ggml>(w), quantized<mxfp4>(w)};
  for (const auto& s : formats)
    for (const index_t m : {1, 3, 40}) {  // GEMV (decode) and panel GEMM (prefill) paths
      check_linear<f32, backends::Cpu>(s, n, k, m);
      check_linear<bf16, backends::Cpu>(s, n, k, m);
      check_linear<f32, backends::Reference>(s, n, k, m);
      check_linear<bf16, backends::Reference>(s, n, k, m);
    }
}

TEST_CASE("AnyWeight: embed_rows gathers the stored rows of every format", "[models][any_weight]") {
  const index_t n = 16, k = 64;
  auto rng = make_rng(4);
  const Tensor<f32, 2> w = random_tensor<f32, 2>({n, k}, rng);
  const std::vector<std::int64_t> ids = {3, 0, 15, 3};
  for (const auto& s : {floating<f32>(w), floating<bf16>(w), floating<f16>(w), quantized<q8_0>(w), quantized<q4_0>(w),
                        quantized<q4_1>(w), quantized<mxfp4_ggml>(w), quantized<mxfp4>(w)}) {
    const AnyWeight table = any_weight(s, n, k);
    const Tensor<f32, 2> rows = embed_rows<f32>(table, ids);  // [4, K]
    const Tensor<bf16, 2> rows16 = embed_rows<bf16>(table, ids);
    for (std::size_t t = 0; t < ids.size(); ++t)
      for (index_t j = 0; j < k; ++j) {
        const double want = s.values[static_cast<std::size_t>(ids[t] * k + j)];
        INFO(to_string(s.code) << " row " << ids[t] << " column " << j);
        CHECK(static_cast<double>(rows(static_cast<index_t>(t), j)) == want);  // exact: dequantization is exact in f32
        CHECK(static_cast<float>(rows16(static_cast<index_t>(t), j)) ==
              static_cast<float>(storage_t<bf16>(static_cast<float>(want))));  // one rounding to bf16
      }
    const std::vector<std::int64_t> bad = {2, 16};
    CHECK_THAT(message_of<range_error>([&] { (void)embed_rows<f32>(table, bad); }),
               Contains("token id 16 at index 1") && Contains("[0, 16)"));
    const std::vector<std::int64_t> negative = {-1};
    CHECK_THROWS_AS(embed_rows<f32>(table, negative), range_error);
  }
}

TEST_CASE("AnyWeight: refuses what is not a weight, copies only misaligned floats", "[models][any_weight]") {
  std::vector<std::byte> buf(4 * 32 * 4 + 4);
  CHECK_THAT(message_of<dtype_error>([&] {
               (void)AnyWeight::from(io::detail::AnyTensorBytes::make("blk.0.attn_q.weight", dtype_code::i32, {4, 32},
                                                       std::span(buf).first(4 * 32 * 4), "f.gguf"));
             }),
             Contains("'blk.0.attn_q.weight'") && Contains("I32"));
  CHECK_THROWS_AS(AnyWeight::from(io::detail::AnyTensorBytes::make("v", dtype_code::f32, {128}, std::span(buf).first(512), "x")),
                  shape_error);
  CHECK_THROWS_AS(AnyWeight::from(io::detail::AnyTensorBytes::make("q", dtype_code::q8_0, {4, 32}, std::span(buf).first(100), "x")),
                  format_error);
  // A float tensor at an address that is not a multiple of 4: one aligned copy, same values.
  std::vector<float> vals(4 * 32);
  for (std::size_t i = 0; i < vals.size(); ++i) vals[i] = static_cast<float>(i) * 0.25f - 3.0f;
  std::memcpy(buf.data() + 2, vals.data(), vals.size() * 4);
  const AnyWeight w = AnyWeight::from(io::detail::AnyTensorBytes::make("m", dtype_code::f32, {4, 32}, std::span(buf).subspan(2, 512), "x"));
  CHECK(!w.is_zero_copy());
  Tensor<f32, 2> x({1, 32});
  x(0, 5) = 1.0f;
  const Tensor<f32, 2> y = backends::Cpu{}.linear(x, w, activation_quantization::none);  // column 5 of w
  for (index_t r = 0; r < 4; ++r) CHECK(y(0, r) == vals[static_cast<std::size_t>(r * 32 + 5)]);
}

// ---------------------------------------------------------------------------------------------
// Loading a Llama: every error path names the tensor or key
// ---------------------------------------------------------------------------------------------

namespace {

/// Writes `c` to a temp dir and loads it through load_model (the tools' entry point).
[[nodiscard]] std::unique_ptr<pm::CausalLM> load_written(const LlamaCheckpoint& c, const TempDir& dir,
                                                         pm::precision p = pm::precision::f32,
                                                         pm::LoadOptions o = {}) {
  c.write(dir.path());
  return pm::load_model(dir.path(), p, o);
}

}  // namespace

TEST_CASE("Llama loading: wrong or missing tensors, dtypes and configs are rejected by name", "[models][errors]") {
  const LlamaCheckpoint good = random_llama(LlamaSpec{}, 21);
  TempDir dir;

  SECTION("the good checkpoint loads") { CHECK_NOTHROW(load_written(good, dir)); }

  SECTION("missing tensor") {
    LlamaCheckpoint c = good;
    c.tensors.erase("model.layers.1.mlp.up_proj.weight");
    CHECK_THAT(message_of<format_error>([&] { (void)load_written(c, dir); }),
               Contains("no tensor 'model.layers.1.mlp.up_proj.weight'"));
  }

  SECTION("wrong shape: the message derives the expected shape from the config") {
    LlamaCheckpoint c = good;
    auto& k = c.tensors.at("model.layers.1.self_attn.k_proj.weight");
    k.shape = {32, 32};
    k.values.resize(32 * 32, 0.25);
    CHECK_THAT(message_of<shape_error>([&] { (void)load_written(c, dir); }),
               Contains("tensor 'model.layers.1.self_attn.k_proj.weight'") && Contains("shape [32, 32], expected [16, 32]") &&
                   Contains("from num_key_value_heads=2 × head_dim=8, hidden_size=32") && Contains("config.json"));
  }

  SECTION("wrong dtype: an integer projection, an F64 norm gain") {
    LlamaCheckpoint c = good;
    c.tensors.at("model.layers.0.self_attn.q_proj.weight").stored = dtype_code::i32;
    CHECK_THAT(message_of<dtype_error>([&] { (void)load_written(c, dir); }),
               Contains("'model.layers.0.self_attn.q_proj.weight'") && Contains("I32"));
    LlamaCheckpoint d = good;
    d.tensors.at("model.norm.weight").stored = dtype_code::f64;
    CHECK_THAT(message_of<dtype_error>([&] { (void)load_written(d, dir); }),
               Contains("'model.norm.weight'") && Contains("stored dtype F64, declared f32") && Contains("norm_weight"));
  }

  SECTION("unknown architecture: the error lists the supported models") {
    LlamaCheckpoint c = good;
    c.config["model_type"] = "mamba";
    c.config["architectures"] = {"MambaForCausalLM"};
    CHECK_THAT(message_of<config_error>([&] { (void)load_written(c, dir); }),
               Contains("model_type \"mamba\"") && Contains("MambaForCausalLM") && Contains("llama (model_type \"llama\""));
  }

  SECTION("a checkpoint selected by `architectures` alone loads") {
    LlamaCheckpoint c = good;
    c.config.erase("model_type");
    CHECK(load_written(c, dir)->info().architecture == "llama");
  }

  SECTION("config inconsistent with the tensors") {
    LlamaCheckpoint c = good;
    c.config["num_hidden_layers"] = 1;  // the file holds two layers
    CHECK_THAT(message_of<config_error>([&] { (void)load_written(c, dir); }),
               Contains("num_hidden_layers = 1") && Contains("layer 1") && Contains("'model.layers.1."));
    LlamaCheckpoint v = good;
    v.config["vocab_size"] = 100;  // the embedding has 96 rows
    CHECK_THAT(message_of<shape_error>([&] { (void)load_written(v, dir); }),
               Contains("'model.embed_tokens.weight'") && Contains("expected [100, 32] from vocab_size=100"));
    LlamaCheckpoint t = good;
    t.config["tie_word_embeddings"] = false;  // but there is no lm_head
    CHECK_THAT(message_of<config_error>([&] { (void)load_written(t, dir); }),
               Contains("tie_word_embeddings = false") && Contains("'lm_head.weight'"));
    LlamaCheckpoint h = good;
    h.config["num_key_value_heads"] = 3;
    CHECK_THAT(message_of<config_error>([&] { (void)load_written(h, dir); }),
               Contains("num_attention_heads = 4 is not a multiple of num_key_value_heads = 3"));
    LlamaCheckpoint a = good;
    a.config["hidden_act"] = "gelu";
    CHECK_THAT(message_of<config_error>([&] { (void)load_written(a, dir); }), Contains("'hidden_act'"));
    LlamaCheckpoint m = good;
    m.config.erase("hidden_size");
    CHECK_THAT(message_of<config_error>([&] { (void)load_written(m, dir); }), Contains("missing required key 'hidden_size'"));
  }

  SECTION("no config.json at all") {
    good.write(dir.path());
    std::filesystem::remove(dir / "config.json");
    CHECK_THAT(message_of<config_error>([&] { (void)pm::load_model(dir.path(), pm::precision::f32); }),
               Contains("no config.json"));
  }

  SECTION("unused tensors are reported, not silently dropped") {
    LlamaCheckpoint c = good;
    c.tensors["model.rotary_emb.inv_freq"] = RawTensor{{4}, {1, 0.5, 0.25, 0.125}, dtype_code::f32};
    const auto lm = load_written(c, dir);
    CHECK(lm->info().unused_tensors == std::vector<std::string>{"model.rotary_emb.inv_freq"});
  }
}

TEST_CASE("Llama requests: token ids and positions are checked before anything runs", "[models][errors]") {
  const LlamaCheckpoint good = random_llama(LlamaSpec{}, 22);
  TempDir dir;
  const auto lm = load_written(good, dir, pm::precision::f32, {.max_context = 8});
  const auto seq = lm->new_sequence();
  const std::vector<std::int64_t> bad_id = {1, 2, 96};
  CHECK_THAT(message_of<range_error>([&] { (void)lm->forward(seq, bad_id); }),
             Contains("token id 96") && Contains("vocabulary [0, 96)"));
  CHECK(lm->length(seq) == 0);  // nothing was appended
  const std::vector<std::int64_t> long_prompt(9, 5);
  CHECK_THAT(message_of<range_error>([&] { (void)lm->forward(seq, long_prompt); }),
             Contains("0 cached + 9 new tokens exceed the context length 8"));
  const std::vector<std::int64_t> six(6, 5), three(3, 7);
  (void)lm->forward(seq, six);
  CHECK_THROWS_AS(lm->forward(seq, three), range_error);  // 6 + 3 > 8
  CHECK(lm->length(seq) == 6);
  const std::vector<std::int64_t> none;
  CHECK_THROWS_AS(lm->forward(seq, none), shape_error);
  SECTION("a context longer than the model's is refused at load") {
    TempDir d2;
    CHECK_THAT(message_of<config_error>([&] { (void)load_written(good, d2, pm::precision::f32, {.max_context = 65}); }),
               Contains("max_context 65 exceeds the model's context length 64"));
  }
}

TEST_CASE("CausalLM: 3-D positions equal to the plain positions are 1-D RoPE", "[models][errors]") {
  const LlamaCheckpoint good = random_llama(LlamaSpec{}, 23);
  TempDir dir;
  const auto lm = load_written(good, dir, pm::precision::f32, {.max_sequences = 3});
  const std::vector<std::int64_t> toks = {4, 8, 15};
  Tensor<i64, 2> pos({3, 3});
  for (index_t r = 0; r < 3; ++r)
    for (index_t t = 0; t < 3; ++t) pos(r, t) = t;
  const auto a = lm->new_sequence();
  const auto b = lm->new_sequence();
  const Tensor<f32, 2> x = lm->forward(a, toks), y = lm->forward(b, toks, pos.cview());
  CHECK(std::memcmp(x.data(), y.data(), x.bytes()) == 0);
  pos(1, 2) = 7;  // an image-like position: this model cannot honour it
  const auto c = lm->new_sequence();
  CHECK_THAT(message_of<config_error>([&] { (void)lm->forward(c, toks, pos.cview()); }),
             Contains("takes 1-D positions only") && Contains("row 1 at token 2 is 7"));
  CHECK(lm->length(c) == 0);
}

// ---------------------------------------------------------------------------------------------
// Zero copy
// ---------------------------------------------------------------------------------------------

TEST_CASE("Llama weights are read in place from the file mapping", "[models][zero_copy]") {
  const auto check = [](pm::WeightSource& w, const auto& model) {
    const auto& ws = model.weights();
    const auto inside = [&](const AnyWeight& a) {
      INFO("tensor " << a.name());
      CHECK(a.is_zero_copy());
      CHECK(w.contains_address(a.data(), a.file_bytes().size()));
    };
    inside(ws.embed_tokens);
    inside(ws.head());  // its own tensor, or the embedding table itself when tied (one copy)
    if (ws.tied()) CHECK(&ws.head() == &ws.embed_tokens);
    for (const auto& L : ws.layers) {
      for (const AnyWeight* a : {&L.q_proj, &L.k_proj, &L.v_proj, &L.o_proj, &L.gate_proj, &L.up_proj, &L.down_proj})
        inside(*a);
      CHECK(L.input_layernorm.is_zero_copy());
      CHECK(w.contains_address(L.input_layernorm.data(), sizeof(float)));
    }
  };
  SECTION("safetensors") {
    const LlamaCheckpoint c = random_llama(LlamaSpec{.tied = false}, 24);
    TempDir dir;
    c.write(dir.path());
    pm::WeightSource w = pm::WeightSource::open(dir.path());
    const auto model = pm::Llama<f32_policy, backends::Cpu>::load(backends::Cpu{}, w, pm::LlamaConfig::from_hf(pm::HfConfig::open(dir / "config.json")),
                                                   pm::LlamaTensorNames::hf(), {});
    check(w, model);
    CHECK(pm::load_model(dir.path(), pm::precision::f32)->info().bytes_copied == 0);
  }
  SECTION("GGUF") {
    const auto path = std::filesystem::path(PRECIS_FIXTURES_DIR) / "models" / "llama" / "model.gguf";
    if (!std::filesystem::exists(path)) {
      WARN("SKIPPED: " << path.string() << " is absent");
      return;
    }
    pm::WeightSource w = pm::WeightSource::open(path);
    const auto model = pm::Llama<f32_policy, backends::Cpu>::load(backends::Cpu{}, w, pm::LlamaConfig::from_gguf(*w.gguf(), path.string()),
                                                   pm::LlamaTensorNames::gguf(), {});
    check(w, model);
  }
}

TEST_CASE("load_model: the registry names every model it can load", "[models][registry]") {
  bool has_llama = false;
  for (const auto& e : pm::model_registry()) has_llama = has_llama || e.name == "llama";
  CHECK(has_llama);
  CHECK(pm::parse_precision("bf16") == pm::precision::bf16);
  CHECK(!pm::parse_precision("fp16"));
}

TEST_CASE("Robustness: hostile configs and checkpoints fail at load, naming what and where",
          "[models][errors][robustness]") {
  const LlamaCheckpoint good = random_llama(LlamaSpec{}, 22);
  TempDir dir;

  SECTION("a layer count of 10^12 is refused before it sizes anything") {
    LlamaCheckpoint c = good;
    c.config["num_hidden_layers"] = 1000000000000LL;
    CHECK_THAT(message_of<config_error>([&] { (void)load_written(c, dir); }),
               Contains("'num_hidden_layers'") && Contains("implausibly large"));
  }
  SECTION("more layers configured than the weights hold") {
    LlamaCheckpoint c = good;
    c.config["num_hidden_layers"] = 40;
    CHECK_THAT(message_of<config_error>([&] { (void)load_written(c, dir); }),
               Contains("num_hidden_layers = 40") && Contains("layers 0..1 only"));
  }
  SECTION("an absurd size is refused by name") {
    LlamaCheckpoint c = good;
    c.config["hidden_size"] = 1LL << 40;
    CHECK_THAT(message_of<config_error>([&] { (void)load_written(c, dir); }),
               Contains("'hidden_size'") && Contains("implausibly large"));
  }
  SECTION("config.json says float32 over BF16 tensors") {
    LlamaCheckpoint c = good;
    for (auto& [name, t] : c.tensors) t.stored = dtype_code::bf16;
    c.config["torch_dtype"] = "float32";
    c.config.erase("dtype");
    CHECK_THAT(message_of<config_error>([&] { (void)load_written(c, dir); }),
               Contains("float32") && Contains("BF16") && Contains("disagrees"));
  }
  SECTION("F16 and BF16 weight matrices mixed in one checkpoint") {
    LlamaCheckpoint c = good;
    c.config.erase("torch_dtype");
    c.config.erase("dtype");
    for (auto& [name, t] : c.tensors) t.stored = dtype_code::bf16;
    c.tensors.at("model.layers.1.mlp.up_proj.weight").stored = dtype_code::f16;
    CHECK_THAT(message_of<config_error>([&] { (void)load_written(c, dir); }),
               Contains("mixes F16 and BF16") && Contains("model.layers.1.mlp.up_proj.weight"));
  }
  SECTION("a KV cache beyond the address space says what needed how much") {
    LlamaCheckpoint c = good;
    c.config["max_position_embeddings"] = 1 << 26;  // allowed, but 256 sequences of it are 8 TiB
    pm::LoadOptions o;
    o.max_context = 0;  // the model's own
    o.max_sequences = 256;
    CHECK_THAT(message_of<precis::resource_error>([&] { (void)load_written(c, dir, pm::precision::f32, o); }),
               Contains("[kv cache]") && Contains("256 sequence(s)") && Contains("-c"));
  }
  SECTION("a NaN in a norm weight is a load error naming the tensor and element") {
    LlamaCheckpoint c = good;
    c.tensors.at("model.layers.0.input_layernorm.weight").values[5] = std::numeric_limits<double>::quiet_NaN();
    CHECK_THAT(message_of<format_error>([&] { (void)load_written(c, dir); }),
               Contains("model.layers.0.input_layernorm.weight") && Contains("element 5") && Contains("not finite"));
  }
}

TEST_CASE("Robustness: activation_tensor never narrows silently", "[models][errors][robustness]") {
  const std::vector<float> big{1.0f, 3.4e38f};
  const auto bytes = std::as_bytes(std::span(big));
  const io::AnyTensor t = io::detail::AnyTensorBytes::make("b", dtype_code::f32, {2}, bytes, "test");
  CHECK_THROWS_WITH((precis::activation_tensor<bf16, 1>(t)), Contains("narrows") && Contains("narrowed_activation_tensor"));
  CHECK_THROWS_WITH((precis::narrowed_activation_tensor<bf16, 1>(t)), Contains("element 1") && Contains("overflows bf16"));
  const std::vector<float> ok{1.0f, -2.5f};
  const io::AnyTensor s = io::detail::AnyTensorBytes::make("b", dtype_code::f32, {2}, std::as_bytes(std::span(ok)), "test");
  CHECK(static_cast<float>(precis::narrowed_activation_tensor<bf16, 1>(s)(1)) == -2.5f);
  CHECK(precis::activation_tensor<f32, 1>(s)(1) == -2.5f);
  // AnyTensor::of takes its dtype code from the view's type.
  Tensor<bf16, 1> b({3});
  CHECK(io::AnyTensor::of<bf16, 1>("x", b.cview(), "memory").dtype() == dtype_code::bf16);
}
