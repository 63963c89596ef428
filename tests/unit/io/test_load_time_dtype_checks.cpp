// The ten load-time tests of dtype-bugs.md §3 ("Load-time tests"), one TEST_CASE each, named
// after the behaviour and numbered as in the catalog. Every test writes its own tiny checkpoint
// (a temp directory with model.safetensors and, where the case is about it, config.json) and
// checks both the accepted path and the refused one, so none of them can pass vacuously.
//
// Expected values are computed independently of the code under test: exact widenings are
// checked bit by bit (bf16 = top half of an f32), narrowings against the C++ double → float
// conversion, MXFP4 against the FP4 E2M1 table and ldexp written out in this file.
#include <cmath>        // std::ldexp, std::pow
#include <cstdint>      // std::uint8_t, std::uint16_t, std::uint32_t
#include <cstring>      // std::memcpy
#include <optional>     // std::optional
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <type_traits>  // std::is_same_v, std::remove_cvref_t
#include <vector>       // std::vector

#include <catch2/catch.hpp>  // TEST_CASE, REQUIRE

#include <precis/core/precision_policy.hpp>  // precision_policy, bf16_policy, f32_policy, role::*
#include <precis/core/tensor.hpp>            // precis::Tensor
#include <precis/io/checkpoint.hpp>          // Checkpoint
#include <precis/io/checkpoint_dtype.hpp>    // check_checkpoint_dtype
#include <precis/io/kv_cache_dtype.hpp>      // resolve_kv_cache_dtype
#include <precis/io/load.hpp>                // load, load_role
#include <precis/io/load_mxfp4.hpp>          // load_mxfp4, dequantize_mxfp4_fallback
#include <precis/io/safetensors_writer.hpp>  // SafetensorsWriter

#include "io_test_support.hpp"  // TempDir, write_text

using namespace precis;
using io::Checkpoint;
using io::ConversionReport;
using io::SafetensorsWriter;
using Catch::Matchers::Contains;

namespace {

/// A checkpoint directory: model.safetensors from `w`, and config.json when `config` is non-empty.
struct TinyCheckpoint {
  test::TempDir dir;
  TinyCheckpoint(const SafetensorsWriter& w, std::string_view config = {}) {
    w.write(dir / "model.safetensors");
    if (!config.empty()) test::write_text(dir / "config.json", config);
  }
  [[nodiscard]] Checkpoint open() const { return Checkpoint::open(dir.path()); }
};

template <class D, std::size_t R>
Tensor<D, R> filled(const extents_t<R>& e, float start, float step) {
  Tensor<D, R> t(e);
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = storage_t<D>(start + step * static_cast<float>(i));
  return t;
}

/// A bf16 [2, 4] projection weight, the "model dtype" part of each checkpoint.
void add_bf16_weights(SafetensorsWriter& w) {
  w.add("model.layers.0.self_attn.q_proj.weight", filled<bf16, 2>({2, 4}, -1.0f, 0.25f));
  w.add("model.layers.1.self_attn.q_proj.weight", filled<bf16, 2>({2, 4}, 0.5f, 0.125f));
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("load-time #1 (seed 2): an F64 inv_freq is refused for the f32 RoPE role unless narrow<f64, f32> is listed",
          "[io][load_time]") {
  Tensor<f64, 1> inv_freq({32});
  for (index_t i = 0; i < 32; ++i) inv_freq.data()[i] = 1.0 / std::pow(150000.0, static_cast<double>(2 * i) / 64.0);
  SafetensorsWriter w;
  w.add("model.rotary_emb.inv_freq", inv_freq);
  add_bf16_weights(w);
  const TinyCheckpoint tc(w);
  const Checkpoint ckpt = tc.open();
  const io::AnyTensor t = ckpt.tensor("model.rotary_emb.inv_freq");

  // The declared type is the pinned rope_table role: f32 under a bf16 policy as well.
  REQUIRE_THROWS_AS((io::load_role<role::rope_table, bf16_policy, 1>(t)), dtype_error);
  REQUIRE_THROWS_WITH((io::load_role<role::rope_table, bf16_policy, 1>(t)),
                      Contains("tensor 'model.rotary_emb.inv_freq'") && Contains("model.safetensors") &&
                          Contains("stored dtype F64, declared f32") && Contains("no implicit conversion is done"));

  ConversionReport report;
  const auto l = io::load_role<role::rope_table, bf16_policy, 1>(t, {32}, report, io::narrow<f64, f32>{});
  STATIC_REQUIRE(std::is_same_v<decltype(l), const io::Loaded<f32, 1>>);
  for (index_t i = 0; i < 32; ++i) REQUIRE(l(i) == static_cast<float>(inv_freq(i)));  // one RNE rounding
  REQUIRE(report.size() == 1);
  REQUIRE_THAT(report.to_string(), Contains("tensor 'model.rotary_emb.inv_freq'") && Contains("stored F64 -> f32") &&
                                       Contains("narrow<f64, f32>"));
}

TEST_CASE("load-time #2 (E28): F32 sinks and router bias load under a bf16 policy and save back as F32",
          "[io][load_time]") {
  Tensor<f32, 1> sinks({4});
  const float sink_values[] = {0.1f, -2.75f, 1.0f / 3.0f, 3.0e-5f};  // none is a bf16 value
  std::memcpy(sinks.data(), sink_values, sizeof sink_values);
  SafetensorsWriter w;
  w.add("model.layers.0.self_attn.sinks", sinks);
  w.add("model.layers.0.mlp.router.bias", filled<f32, 1>({3}, 0.3f, 0.1f));
  add_bf16_weights(w);
  const TinyCheckpoint tc(w);
  const Checkpoint ckpt = tc.open();

  const auto s = io::load_role<role::sinks, bf16_policy, 1>(ckpt.tensor("model.layers.0.self_attn.sinks"), {4});
  const auto b = io::load_role<role::router_bias, bf16_policy, 1>(ckpt.tensor("model.layers.0.mlp.router.bias"));
  STATIC_REQUIRE(std::is_same_v<decltype(s), const io::Loaded<f32, 1>>);
  STATIC_REQUIRE(std::is_same_v<decltype(b), const io::Loaded<f32, 1>>);
  for (index_t i = 0; i < 4; ++i) REQUIRE(s(i) == sink_values[i]);  // bit-exact: no bf16 round trip
  // The bf16 policy's own weights still load as bf16.
  REQUIRE(io::load_role<role::weight, bf16_policy, 2>(ckpt.tensor("model.layers.0.self_attn.q_proj.weight")).numel() == 8);

  // Save round trip: the pinned tensors are written in their own dtype and read back as F32.
  SafetensorsWriter out;
  out.add("model.layers.0.self_attn.sinks", s);
  out.add("model.layers.0.mlp.router.bias", b);
  test::TempDir dir2;
  out.write(dir2 / "model.safetensors");
  const Checkpoint again = Checkpoint::open(dir2.path());
  REQUIRE(again.tensor("model.layers.0.self_attn.sinks").dtype() == dtype_code::f32);
  REQUIRE(again.tensor("model.layers.0.mlp.router.bias").dtype_name() == "F32");
  const auto s2 = io::load_role<role::sinks, bf16_policy, 1>(again.tensor("model.layers.0.self_attn.sinks"));
  for (index_t i = 0; i < 4; ++i) REQUIRE(s2(i) == sink_values[i]);
}

TEST_CASE("load-time #3 (mlx-vlm#2139): BF16 sinks reach the f32 role only through widen<bf16, f32>, logged",
          "[io][load_time]") {
  Tensor<bf16, 1> sinks({3});
  const std::uint16_t bits[] = {0x3e80, 0xc0a0, 0x3f81};  // 0.25, -5.0, 1.0078125
  for (index_t i = 0; i < 3; ++i) sinks.data()[i] = bfloat16::from_bits(bits[i]);
  SafetensorsWriter w;
  w.add("model.layers.0.self_attn.sinks", sinks);
  add_bf16_weights(w);
  const TinyCheckpoint tc(w);
  const Checkpoint ckpt = tc.open();
  const io::AnyTensor t = ckpt.tensor("model.layers.0.self_attn.sinks");

  REQUIRE_THROWS_WITH((io::load_role<role::sinks, bf16_policy, 1>(t)),
                      Contains("stored dtype BF16, declared f32 for role 'sinks', pinned to f32") &&
                          Contains("list widen<bf16, f32>"));
  // Reading the bf16 bytes as f32 (what the mlx-vlm kernel did) is impossible: there is no
  // such API; the only path is the named conversion.
  ConversionReport report;
  const auto l = io::load_role<role::sinks, bf16_policy, 1>(t, report, io::widen<bf16, f32>{});
  for (index_t i = 0; i < 3; ++i) {
    std::uint32_t got = 0;
    std::memcpy(&got, &l(i), 4);
    REQUIRE(got == static_cast<std::uint32_t>(bits[i]) << 16);
  }
  REQUIRE(report.size() == 1);
  REQUIRE(report.records()[0].conversion == "widen<bf16, f32>");
  REQUIRE(report.records()[0].tensor == "model.layers.0.self_attn.sinks");
}

TEST_CASE("load-time #4 (E22): a BF16 checkpoint under an f16 policy is refused unless the model opts in",
          "[io][load_time]") {
  SafetensorsWriter w;
  add_bf16_weights(w);
  Tensor<bf16, 2> big({1, 2});
  big.data()[0] = bfloat16(1.5f);
  big.data()[1] = bfloat16(70144.0f);  // a bf16 activation scale f16 cannot hold (max 65504)
  w.add("model.layers.1.mlp.down_proj.weight", big);
  const TinyCheckpoint tc(w, R"({"torch_dtype": "bfloat16", "num_hidden_layers": 2})");
  const Checkpoint ckpt = tc.open();
  using f16_policy = precision_policy<f16>;

  REQUIRE_THROWS_AS(io::check_checkpoint_dtype<f16_policy>(ckpt), dtype_error);
  REQUIRE_THROWS_WITH(io::check_checkpoint_dtype<f16_policy>(ckpt),
                      Contains("weights are stored as BF16") && Contains("config.json agrees") &&
                          Contains("policy declares f16") && Contains("E22") &&
                          Contains("narrow<bf16, f16>"));
  REQUIRE(io::check_checkpoint_dtype<bf16_policy>(ckpt).checkpoint.stored == dtype_code::bf16);

  // Opting in: the check passes and names the conversion; each tensor then goes through it, and a
  // value f16 cannot hold is a range_error instead of the silent Inf/NaN of E22.
  const auto opted = io::check_checkpoint_dtype<f16_policy>(ckpt, io::narrow<bf16, f16>{});
  REQUIRE(opted.conversion == std::optional<std::string>("narrow<bf16, f16>"));
  ConversionReport report;
  const auto q = io::load_role<role::weight, f16_policy, 2>(ckpt.tensor("model.layers.0.self_attn.q_proj.weight"),
                                                           report, io::narrow<bf16, f16>{});
  REQUIRE(static_cast<float>(q(0, 1)) == -0.75f);  // -1 + 0.25: exact in both formats
  REQUIRE_THROWS_WITH((io::load_role<role::weight, f16_policy, 2>(ckpt.tensor("model.layers.1.mlp.down_proj.weight"),
                                                                  report, io::narrow<bf16, f16>{})),
                      Contains("70144") && Contains("overflows f16"));
}

TEST_CASE("load-time #5 (E25): config.json torch_dtype bfloat16 with F16 headers is reported", "[io][load_time]") {
  SafetensorsWriter w;  // the GPTQ shape: f16 scales, config claiming bf16
  w.add("model.layers.0.mlp.down_proj.scales", filled<f16, 2>({2, 4}, 0.5f, 0.5f));
  w.add("model.layers.0.mlp.down_proj.qweight", Tensor<i32, 2>({2, 4}));
  const TinyCheckpoint tc(w, R"({"torch_dtype": "bfloat16"})");
  const Checkpoint ckpt = tc.open();

  REQUIRE(ckpt.config_dtype().dtype == dtype_code::bf16);
  REQUIRE_THROWS_AS(io::resolve_checkpoint_dtype(ckpt), config_error);
  REQUIRE_THROWS_WITH(io::resolve_checkpoint_dtype(ckpt),
                      Contains("config.json torch_dtype \"bfloat16\" (bf16) disagrees with the tensor headers") &&
                          Contains("as F16") && Contains("model.layers.0.mlp.down_proj.scales") && Contains("E25"));
  // Whatever the policy, the check stops at the disagreement.
  REQUIRE_THROWS_AS(io::check_checkpoint_dtype<bf16_policy>(ckpt), config_error);
  REQUIRE_THROWS_AS(io::check_checkpoint_dtype<precision_policy<f16>>(ckpt), config_error);

  // The same headers with a matching config pass.
  const TinyCheckpoint ok(w, R"({"torch_dtype": "float16"})");
  REQUIRE(io::check_checkpoint_dtype<precision_policy<f16>>(ok.open()).checkpoint.stored == dtype_code::f16);
}

TEST_CASE("load-time #6 (E30): a missing or \"auto\" torch_dtype resolves from the headers and must match the policy",
          "[io][load_time]") {
  SafetensorsWriter w;
  add_bf16_weights(w);
  w.add("model.norm.weight", filled<f32, 1>({4}, 1.0f, 0.0f));  // rank 1, f32: not a weight matrix
  for (const char* config : {"", R"({"torch_dtype": "auto"})", R"({"dtype": "auto"})", R"({"torch_dtype": null})"}) {
    INFO("config: " << config);
    const TinyCheckpoint tc(w, config);
    const Checkpoint ckpt = tc.open();
    const auto r = io::check_checkpoint_dtype<bf16_policy>(ckpt);
    REQUIRE(r.checkpoint.stored == dtype_code::bf16);
    REQUIRE(r.checkpoint.config.kind != io::config_dtype_kind::explicit_);
    REQUIRE_FALSE(r.conversion.has_value());
    // No default to f32 (or f16) and no substitution: an f32 model refuses the bf16 file…
    REQUIRE_THROWS_WITH(io::check_checkpoint_dtype<f32_policy>(ckpt),
                        Contains("stored as BF16") && Contains("resolved from the headers") &&
                            Contains("declares f32") && Contains("widen<bf16, f32>"));
    // …unless it lists the exact widening.
    REQUIRE(io::check_checkpoint_dtype<f32_policy>(ckpt, io::widen<bf16, f32>{}).conversion ==
            std::optional<std::string>("widen<bf16, f32>"));
  }
  // "auto" and an explicit dtype under both keys cannot both win.
  const TinyCheckpoint both(w, R"({"torch_dtype": "bfloat16", "dtype": "auto"})");
  REQUIRE_THROWS_WITH(both.open().config_dtype(), Contains("disagree") && Contains("E30"));
}

TEST_CASE("load-time #7 (seed 1, E24): MXFP4 blocks load as QuantView<mxfp4>; without a kernel they dequantize to "
          "the policy's activation type, never a hard-coded bf16",
          "[io][load_time][mxfp4]") {
  // [E=2, N=3, K=64]: blocks [2, 3, 2, 16], scales [2, 3, 2].
  constexpr index_t E = 2, N = 3, KB = 2, K = KB * 32;
  Tensor<u8, 4> blocks({E, N, KB, 16});
  Tensor<u8, 3> scales({E, N, KB});
  for (index_t i = 0; i < blocks.numel(); ++i) blocks.data()[i] = static_cast<std::uint8_t>((i * 37 + 11) & 0xff);
  for (index_t i = 0; i < scales.numel(); ++i) scales.data()[i] = static_cast<std::uint8_t>(120 + (i * 5) % 16);
  blocks.data()[0] = 0x2f;  // model-semantics §1.6: byte 0x2F, scale 128 → elements −12, +2
  scales.data()[0] = 128;
  SafetensorsWriter w;
  add_bf16_weights(w);
  w.add("model.layers.0.mlp.experts.down_proj_blocks", blocks);
  w.add("model.layers.0.mlp.experts.down_proj_scales", scales);
  w.add("model.layers.0.mlp.experts.down_proj_bias", filled<bf16, 2>({E, N}, 0.0f, 1.0f));
  const TinyCheckpoint tc(w);
  const Checkpoint ckpt = tc.open();
  const std::string prefix = "model.layers.0.mlp.experts.down_proj";

  // The reference: FP4 E2M1 table × 2^(scale − 127), element 2j in the low nibble of byte j.
  const float fp4[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
  const auto reference = [&](index_t e, index_t n, index_t k) {
    const index_t block = (e * N + n) * KB + k / 32;
    const std::uint8_t byte = blocks.data()[block * 16 + (k % 32) / 2];
    const std::uint8_t nibble = (k % 2 == 0) ? (byte & 0x0f) : (byte >> 4);
    return std::ldexp(fp4[nibble], static_cast<int>(scales.data()[block]) - 127);
  };
  REQUIRE(reference(0, 0, 0) == -12.0f);
  REQUIRE(reference(0, 0, 1) == 2.0f);

  // Typed path: a QuantView<mxfp4, 3> of logical extents [E, N, K], zero-copy into the file.
  const auto q = io::load_mxfp4<3>(ckpt, prefix);
  STATIC_REQUIRE(std::is_same_v<std::remove_cvref_t<decltype(q.view())>, QuantView<mxfp4, 3>>);
  REQUIRE(q.extents() == extents_t<3>{E, N, K});
  REQUIRE(reinterpret_cast<const std::byte*>(q.view().nibbles()) ==
          ckpt.tensor(prefix + "_blocks").bytes().data());

  // No-kernel fallback under an f32 policy: Tensor<f32>, exactly the reference values.
  ConversionReport report;
  const auto d32 = io::dequantize_mxfp4_fallback<f32_policy, 3>(ckpt, prefix, report);
  STATIC_REQUIRE(std::is_same_v<decltype(d32), const Tensor<f32, 3>>);
  for (index_t e = 0; e < E; ++e)
    for (index_t n = 0; n < N; ++n)
      for (index_t k = 0; k < K; ++k) REQUIRE(d32(e, n, k) == reference(e, n, k));
  REQUIRE(report.size() == 1);
  REQUIRE(report.records()[0].conversion == "dequant<mxfp4, f32>");
  REQUIRE(report.records()[0].tensor == prefix + "_blocks");

  // Under a bf16 policy: Tensor<bf16>. FP4 values × 2^k (1 mantissa bit) are exact in bf16.
  const auto d16 = io::dequantize_mxfp4_fallback<bf16_policy, 3>(ckpt, prefix, report);
  STATIC_REQUIRE(std::is_same_v<decltype(d16), const Tensor<bf16, 3>>);
  for (index_t e = 0; e < E; ++e)
    for (index_t n = 0; n < N; ++n)
      for (index_t k = 0; k < K; ++k) REQUIRE(static_cast<float>(d16(e, n, k)) == reference(e, n, k));
  REQUIRE(report.records()[1].conversion == "dequant<mxfp4, bf16>");

  // Policies whose declared weight type is neither mxfp4 nor the activation type have no single
  // declared fallback target: they do not compile.
  STATIC_REQUIRE(io::mxfp4_fallback_target_is_declared<precision_policy<bf16, mxfp4>>);
  STATIC_REQUIRE_FALSE(io::mxfp4_fallback_target_is_declared<precision_policy<f32, bf16>>);

  // Malformed MXFP4 tensors are refused, naming the tensor.
  SafetensorsWriter bad;
  bad.add("x_blocks", Tensor<bf16, 3>({1, 1, 16}));
  bad.add("x_scales", Tensor<u8, 2>({1, 1}));
  bad.add("y_blocks", Tensor<u8, 3>({1, 2, 16}));
  bad.add("y_scales", Tensor<u8, 2>({1, 3}));
  bad.add("z_blocks", Tensor<u8, 3>({1, 1, 16}));
  const TinyCheckpoint tb(bad);
  const Checkpoint cb = tb.open();
  REQUIRE_THROWS_WITH(io::load_mxfp4<2>(cb, "x"), Contains("tensor 'x_blocks'") && Contains("stored dtype BF16"));
  REQUIRE_THROWS_WITH(io::load_mxfp4<2>(cb, "y"), Contains("tensor 'y_scales'") && Contains("stored shape [1, 3]"));
  REQUIRE_THROWS_WITH(io::load_mxfp4<2>(cb, "z"), Contains("no tensor named 'z_scales'"));
  REQUIRE_THROWS_WITH(io::load_mxfp4<3>(cb, "y"), Contains("expected rank 4"));
}

TEST_CASE("load-time #8 (pytorch#126000): an int-typed buffer with a matching shape but a float checkpoint value is "
          "refused",
          "[io][load_time]") {
  SafetensorsWriter w;
  Tensor<f32, 1> stored({1});
  stored.data()[0] = 2.8699f;  // the value torch truncated to tensor(2)
  w.add("model.layers.0.moe.tid2eid", stored);
  w.add("model.positions", Tensor<i32, 1>({4}));
  add_bf16_weights(w);
  const TinyCheckpoint tc(w);
  const Checkpoint ckpt = tc.open();

  REQUIRE_THROWS_AS((io::load<i64, 1>(ckpt.tensor("model.layers.0.moe.tid2eid"), {1})), dtype_error);
  REQUIRE_THROWS_WITH((io::load<i64, 1>(ckpt.tensor("model.layers.0.moe.tid2eid"), {1})),
                      Contains("tensor 'model.layers.0.moe.tid2eid'") && Contains("stored dtype F32, declared i64"));
  // Integer widths are not silently reconciled either (no integer load-time conversions exist).
  REQUIRE_THROWS_WITH((io::load_role<role::positions, bf16_policy, 1>(ckpt.tensor("model.positions"), {4})),
                      Contains("stored dtype I32, declared i64 for role 'positions'"));
  REQUIRE(io::load<i32, 1>(ckpt.tensor("model.positions"), {4}).numel() == 4);
}

namespace {
template <class Stored, class X>
concept can_save_as = requires(SafetensorsWriter w, const X& x) { w.template add_as<Stored>(std::string("n"), x); };
}  // namespace

TEST_CASE("load-time #9 (E28): saving an f32 parameter as BF16 fails, at compile time or at run time",
          "[io][load_time]") {
  Tensor<f32, 1> sinks({2});
  sinks.data()[0] = 0.1f;
  sinks.data()[1] = -3.0f;
  // Static target: does not compile.
  STATIC_REQUIRE_FALSE(can_save_as<bf16, Tensor<f32, 1>>);
  STATIC_REQUIRE(can_save_as<f32, Tensor<f32, 1>>);
  // Run-time target (a "save in the model dtype" option): dtype_error naming tensor and dtypes.
  SafetensorsWriter w;
  REQUIRE_THROWS_AS(w.add_as("model.layers.0.self_attn.sinks", dtype_code::bf16, sinks), dtype_error);
  REQUIRE_THROWS_WITH(w.add_as("model.layers.0.self_attn.sinks", dtype_code::bf16, sinks),
                      Contains("[save] tensor 'model.layers.0.self_attn.sinks': declared f32, requested stored dtype "
                               "BF16") &&
                          Contains("silent downcast on save"));
  REQUIRE(w.size() == 0);  // nothing half-written
  // The same call with the tensor's own dtype writes F32.
  w.add_as("model.layers.0.self_attn.sinks", dtype_code::f32, sinks);
  const TinyCheckpoint tc(w);
  REQUIRE(tc.open().tensor("model.layers.0.self_attn.sinks").dtype_name() == "F32");
}

namespace {
struct per_tensor_fp8_quantizer {};  // a named KV quantizer tag for the fp8 policy below
using fp8_kv_policy = precision_policy<bf16, bf16, quantized_kv<f8_e4m3, per_tensor_fp8_quantizer>>;
}  // namespace

TEST_CASE("load-time #10 (E8): --kv-cache-dtype fp8_e4m3 without per-layer scales fails at startup, naming them",
          "[io][load_time][kv_cache]") {
  SafetensorsWriter plain;
  add_bf16_weights(plain);
  const TinyCheckpoint no_scales(plain, R"({"torch_dtype": "bfloat16", "num_hidden_layers": 2})");
  const Checkpoint ckpt = no_scales.open();

  // "auto" and the compute dtypes need no scales.
  const auto a = io::resolve_kv_cache_dtype("auto", ckpt);
  REQUIRE(a.store == dtype_code::bf16);
  REQUIRE(a.from_checkpoint);
  REQUIRE(io::resolve_kv_cache_dtype("bf16", ckpt).store == dtype_code::bf16);
  REQUIRE(io::resolve_kv_cache_dtype("f32", ckpt).store == dtype_code::f32);

  REQUIRE_THROWS_AS(io::resolve_kv_cache_dtype("fp8_e4m3", ckpt), config_error);
  REQUIRE_THROWS_WITH(io::resolve_kv_cache_dtype("fp8_e4m3", ckpt),
                      Contains("all 2 layers") && Contains("4 are missing") &&
                          Contains("'model.layers.0.self_attn.k_scale'") &&
                          Contains("'model.layers.1.self_attn.v_scale'") && Contains("model.safetensors") &&
                          Contains("at startup"));
  REQUIRE_THROWS_WITH(io::resolve_kv_cache_dtype("float16", ckpt),
                      Contains("\"float16\" is not one of") && Contains("fp8_e4m3"));

  // Scales for layer 0 only: layer 1's are named.
  SafetensorsWriter half;
  add_bf16_weights(half);
  half.add("model.layers.0.self_attn.k_scale", filled<f32, 1>({1}, 0.5f, 0.0f));
  half.add("model.layers.0.self_attn.v_scale", filled<f32, 1>({1}, 0.25f, 0.0f));
  const TinyCheckpoint half_ckpt(half, R"({"num_hidden_layers": 2})");
  REQUIRE_THROWS_WITH(io::resolve_kv_cache_dtype("fp8_e4m3", half_ckpt.open()),
                      Contains("2 are missing") && Contains("model.layers.1.self_attn.k_scale") &&
                          !Contains("model.layers.0.self_attn.k_scale"));

  // All scales present (layer count inferred from tensor names, no config.json): accepted.
  SafetensorsWriter full;
  add_bf16_weights(full);
  Tensor<f32, 0> scale(extents_t<0>{});  // 0-rank scales, as llm-compressor writes them
  scale.data()[0] = 0.125f;
  for (const char* l : {"0", "1"})
    for (const char* kind : {"k_scale", "v_scale"})
      full.add(std::string("model.layers.") + l + ".self_attn." + kind, scale);
  const TinyCheckpoint full_ckpt(full);
  const auto fp8 = io::resolve_kv_cache_dtype("fp8_e4m3", full_ckpt.open());
  REQUIRE(fp8.store == dtype_code::f8_e4m3);
  REQUIRE(fp8.k_scales == std::vector<std::string>{"model.layers.0.self_attn.k_scale", "model.layers.1.self_attn.k_scale"});
  REQUIRE(fp8.v_scales.size() == 2);

  // A scale stored as BF16, or a zero scale, is refused naming the tensor.
  SafetensorsWriter wrong;
  add_bf16_weights(wrong);
  wrong.add("model.layers.0.self_attn.k_scale", filled<bf16, 1>({1}, 0.5f, 0.0f));
  wrong.add("model.layers.0.self_attn.v_scale", filled<f32, 1>({1}, 0.0f, 0.0f));
  const TinyCheckpoint wrong_ckpt(wrong, R"({"num_hidden_layers": 1})");
  REQUIRE_THROWS_WITH(io::resolve_kv_cache_dtype("fp8_e4m3", wrong_ckpt.open()),
                      Contains("'model.layers.0.self_attn.k_scale'") && Contains("stored dtype BF16, declared f32"));

  // Against the compiled policy: the flag must name the policy's KV store (E9), and "auto" under
  // an fp8 policy still requires the scales.
  REQUIRE(io::resolve_kv_cache_dtype<bf16_policy>("auto", ckpt).store == dtype_code::bf16);
  REQUIRE_THROWS_WITH(io::resolve_kv_cache_dtype<bf16_policy>("f16", ckpt),
                      Contains("stores the cache as f16") && Contains("compiled to store it as bf16") &&
                          Contains("E9"));
  REQUIRE_THROWS_AS(io::resolve_kv_cache_dtype<fp8_kv_policy>("auto", ckpt), config_error);
  REQUIRE(io::resolve_kv_cache_dtype<fp8_kv_policy>("auto", full_ckpt.open()).store == dtype_code::f8_e4m3);
  REQUIRE_THROWS_AS(io::resolve_kv_cache_dtype<fp8_kv_policy>("bf16", ckpt), config_error);
}
