// Tests for precis/io/load.hpp and precis/io/conversion.hpp: a stored tensor becomes typed only
// when its dtype equals the declared one or a listed named conversion maps it (dtype-bugs E28,
// E29); shape is checked with the same severity; zero-copy views keep the mapping alive;
// misaligned data is copied; conversions are logged.
#include <cmath>        // std::isinf
#include <cstddef>      // std::byte
#include <cstdint>      // std::uint16_t, std::uint32_t, std::uintptr_t
#include <cstring>      // std::memcpy
#include <limits>       // std::numeric_limits
#include <optional>     // std::optional
#include <string>       // std::string
#include <type_traits>  // std::is_same_v
#include <vector>       // std::vector

#include <catch2/catch.hpp>  // TEST_CASE, REQUIRE

#include <precis/core/cast.hpp>              // precis::cast
#include <precis/core/precision_policy.hpp>  // bf16_policy, f32_policy, role::*
#include <precis/core/tensor.hpp>            // precis::Tensor
#include <precis/io/load.hpp>                // load, load_role, Loaded
#include <precis/io/safetensors.hpp>         // SafetensorsFile
#include <precis/io/safetensors_writer.hpp>  // SafetensorsWriter

#include "io_test_support.hpp"  // TempDir
#include "support/any_tensor_bytes.hpp"  // io::detail::AnyTensorBytes (hand-made tensors)

using namespace precis;
using io::ConversionReport;
using io::SafetensorsFile;
using io::SafetensorsWriter;
using Catch::Matchers::Contains;

namespace {

/// An f64 [n] tensor holding 1/(i+3): none of these is exactly an f32.
Tensor<f64, 1> thirds(index_t n) {
  Tensor<f64, 1> t({n});
  for (index_t i = 0; i < n; ++i) t.data()[i] = 1.0 / static_cast<double>(i + 3);
  return t;
}

SafetensorsFile parse_written(const SafetensorsWriter& w, std::vector<std::byte>& keep) {
  keep = w.serialize();
  return SafetensorsFile::parse(keep, "mem.safetensors");
}

}  // namespace

TEST_CASE("load<D>: an equal dtype loads zero-copy from the mapping, and the mapping outlives the file object",
          "[io][load]") {
  test::TempDir dir;
  SafetensorsWriter w;
  Tensor<f32, 2> t({2, 3});
  for (index_t i = 0; i < 6; ++i) t.data()[i] = static_cast<float>(i) - 2.5f;
  w.add("w", t);
  w.write(dir / "m.safetensors");

  std::optional<io::Loaded<f32, 2>> kept;
  {
    const auto f = SafetensorsFile::open(dir / "m.safetensors");
    const auto any = f.tensor("w");
    auto l = io::load<f32, 2>(any);
    REQUIRE(l.is_zero_copy());
    REQUIRE(reinterpret_cast<const std::byte*>(l.data()) == any.bytes().data());  // no copy
    kept.emplace(std::move(l));
  }  // the SafetensorsFile and the AnyTensor are gone; the Loaded still owns the mapping
  REQUIRE(kept->extents() == extents_t<2>{2, 3});
  for (index_t i = 0; i < 2; ++i)
    for (index_t j = 0; j < 3; ++j) REQUIRE((*kept)(i, j) == t(i, j));
}

TEST_CASE("load<D>: misaligned stored data is copied into an aligned owned tensor", "[io][load]") {
  SafetensorsWriter w;
  w.add("pad", Tensor<u8, 1>({3}));
  const Tensor<f64, 1> v = thirds(5);
  w.add("v", v);  // starts at buffer offset 3
  std::vector<std::byte> keep;
  const auto f = parse_written(w, keep);
  const auto any = f.tensor("v");
  REQUIRE(reinterpret_cast<std::uintptr_t>(any.bytes().data()) % alignof(double) != 0);

  const auto l = io::load<f64, 1>(any);
  REQUIRE_FALSE(l.is_zero_copy());
  REQUIRE(reinterpret_cast<std::uintptr_t>(l.data()) % alignof(double) == 0);
  for (index_t i = 0; i < 5; ++i) REQUIRE(l(i) == v(i));
}

TEST_CASE("load<D>: a different stored dtype is a dtype_error naming tensor, file and both dtypes", "[io][load]") {
  SafetensorsWriter w;
  w.add("model.rotary_emb.inv_freq", thirds(4));
  w.add("ids", Tensor<i64, 1>({2}));
  std::vector<std::byte> keep;
  const auto f = parse_written(w, keep);

  const auto inv_freq = f.tensor("model.rotary_emb.inv_freq");
  REQUIRE_THROWS_AS((io::load<f32, 1>(inv_freq)), dtype_error);
  REQUIRE_THROWS_WITH((io::load<f32, 1>(inv_freq)),
                      Contains("[load] tensor 'model.rotary_emb.inv_freq' ('mem.safetensors'): stored dtype F64, "
                               "declared f32 (the checkpoint does not match the model's declared type; no implicit "
                               "conversion is done") &&
                          Contains("narrow<f64, f32> exists as an explicit opt-in"));
  REQUIRE_THROWS_WITH((io::load<f64, 1>(f.tensor("ids"))), Contains("stored dtype I64, declared f64"));
  // The shape is right; the dtype alone is fatal (E29: both are checked).
  REQUIRE_THROWS_AS((io::load<f32, 1>(inv_freq, {4})), dtype_error);
}

TEST_CASE("load<D>: rank and extents are checked and both shapes are named", "[io][load]") {
  SafetensorsWriter w;
  w.add("m", Tensor<bf16, 2>({2, 3}));
  std::vector<std::byte> keep;
  const auto f = parse_written(w, keep);
  const auto m = f.tensor("m");
  REQUIRE_THROWS_AS((io::load<bf16, 3>(m)), shape_error);
  REQUIRE_THROWS_WITH((io::load<bf16, 1>(m)), Contains("tensor 'm'") && Contains("stored shape [2, 3] has rank 2") &&
                                                Contains("declared rank 1"));
  REQUIRE_THROWS_WITH((io::load<bf16, 2>(m, {3, 2})), Contains("stored shape [2, 3], expected [3, 2]"));
  REQUIRE(io::load<bf16, 2>(m, {2, 3}).numel() == 6);
}

TEST_CASE("load<D> with widen<bf16, f32>: exact values, logged in the report", "[io][load][conversion]") {
  Tensor<bf16, 1> b({4});
  const std::uint16_t bits[] = {0x3f80, 0xc2f7, 0x0001, 0x7f80};  // 1, -123.5, smallest subnormal, +Inf
  for (index_t i = 0; i < 4; ++i) b.data()[i] = bfloat16::from_bits(bits[i]);
  SafetensorsWriter w;
  w.add("sinks", b);
  std::vector<std::byte> keep;
  const auto f = parse_written(w, keep);

  ConversionReport report;
  const auto l = io::load<f32, 1>(f.tensor("sinks"), report, io::widen<bf16, f32>{});
  REQUIRE_FALSE(l.is_zero_copy());
  for (index_t i = 0; i < 4; ++i) {
    std::uint32_t got = 0;
    std::memcpy(&got, &l(i), 4);
    REQUIRE(got == static_cast<std::uint32_t>(bits[i]) << 16);  // bf16 = top half of the f32
  }
  REQUIRE(report.size() == 1);
  const auto& r = report.records()[0];
  REQUIRE(r.tensor == "sinks");
  REQUIRE(r.source == "mem.safetensors");
  REQUIRE(r.from == dtype_code::bf16);
  REQUIRE(r.to == dtype_code::f32);
  REQUIRE(r.conversion == "widen<bf16, f32>");
  REQUIRE(report.to_string() == "tensor 'sinks' ('mem.safetensors'): stored BF16 -> f32 via widen<bf16, f32>\n");

  // An equal dtype passes through the same call without a conversion or a record.
  SafetensorsWriter w2;
  w2.add("f", Tensor<f32, 1>({2}));
  std::vector<std::byte> keep2;
  const auto g = parse_written(w2, keep2);
  REQUIRE(io::load<f32, 1>(g.tensor("f"), report, io::widen<bf16, f32>{}).is_zero_copy());
  REQUIRE(report.size() == 1);
}

TEST_CASE("load<D> with narrow<f64, f32>: rounds to nearest even, refuses overflow to Inf", "[io][load][conversion]") {
  SafetensorsWriter w;
  const Tensor<f64, 1> v = thirds(6);
  w.add("inv_freq", v);
  Tensor<f64, 1> big({2});
  big.data()[0] = 1.0;
  big.data()[1] = 1e300;
  w.add("big", big);
  Tensor<f64, 1> special({2});
  special.data()[0] = std::numeric_limits<double>::infinity();
  special.data()[1] = std::numeric_limits<double>::quiet_NaN();
  w.add("special", special);
  std::vector<std::byte> keep;
  const auto f = parse_written(w, keep);

  ConversionReport report;
  const auto l = io::load<f32, 1>(f.tensor("inv_freq"), {6}, report, io::narrow<f64, f32>{});
  // Reference: the C++ double → float conversion, round-to-nearest-even in the default FP mode.
  for (index_t i = 0; i < 6; ++i) REQUIRE(l(i) == static_cast<float>(v(i)));
  REQUIRE(report.records().at(0).conversion == "narrow<f64, f32>");

  REQUIRE_THROWS_AS((io::load<f32, 1>(f.tensor("big"), report, io::narrow<f64, f32>{})), range_error);
  REQUIRE_THROWS_WITH((io::load<f32, 1>(f.tensor("big"), report, io::narrow<f64, f32>{})),
                      Contains("tensor 'big'") && Contains("1e+300") && Contains("flat index 1") &&
                          Contains("overflows f32"));
  // Inf and NaN are values, not overflows.
  const auto s = io::load<f32, 1>(f.tensor("special"), report, io::narrow<f64, f32>{});
  REQUIRE(std::isinf(s(0)));
  REQUIRE(s(1) != s(1));
  REQUIRE(report.size() == 2);
}

TEST_CASE("load<D>: listed conversions that do not start at the stored dtype are not applied", "[io][load]") {
  SafetensorsWriter w;
  w.add("x", Tensor<f16, 1>({2}));
  std::vector<std::byte> keep;
  const auto f = parse_written(w, keep);
  ConversionReport report;
  REQUIRE_THROWS_WITH((io::load<f32, 1>(f.tensor("x"), report, io::widen<bf16, f32>{}, io::narrow<f64, f32>{})),
                      Contains("stored dtype F16, declared f32") &&
                          Contains("listed conversions: widen<bf16, f32> narrow<f64, f32>"));
  REQUIRE(report.empty());
  const auto l = io::load<f32, 1>(f.tensor("x"), report, io::widen<bf16, f32>{}, io::widen<f16, f32>{});
  REQUIRE(report.records().at(0).conversion == "widen<f16, f32>");
  REQUIRE(l(0) == 0.0f);
}

namespace {
template <class From, class To>
concept has_widen = requires { typename io::widen<From, To>; };
template <class From, class To>
concept has_narrow = requires { typename io::narrow<From, To>; };
template <class D, class C>
concept can_load_with = requires(const io::AnyTensor& t, ConversionReport& r) { io::load<D, 1>(t, r, C{}); };
template <class Role, class P>
concept can_load_role = requires(const io::AnyTensor& t) { io::load_role<Role, P, 1>(t); };
}  // namespace

TEST_CASE("conversions: widen exists only for exact pairs, narrow only for inexact ones", "[io][conversion]") {
  STATIC_REQUIRE(has_widen<bf16, f32>);
  STATIC_REQUIRE(has_widen<f16, f32>);
  STATIC_REQUIRE(has_widen<f32, f64>);
  STATIC_REQUIRE(has_widen<f8_e4m3, bf16>);
  STATIC_REQUIRE(has_widen<f8_e5m2, f16>);
  STATIC_REQUIRE_FALSE(has_widen<f64, f32>);
  STATIC_REQUIRE_FALSE(has_widen<f16, bf16>);  // bf16 lacks f16's mantissa
  STATIC_REQUIRE_FALSE(has_widen<bf16, f16>);  // f16 lacks bf16's range
  STATIC_REQUIRE_FALSE(has_widen<i32, i64>);   // integers are not load-time conversions
  STATIC_REQUIRE(has_narrow<f64, f32>);
  STATIC_REQUIRE(has_narrow<bf16, f16>);
  STATIC_REQUIRE(has_narrow<f32, bf16>);
  STATIC_REQUIRE_FALSE(has_narrow<bf16, f32>);  // that is a widening: it must be spelled widen
  STATIC_REQUIRE_FALSE(has_narrow<f32, f32>);
  // A listed conversion must produce the declared dtype.
  STATIC_REQUIRE(can_load_with<f32, io::widen<bf16, f32>>);
  STATIC_REQUIRE_FALSE(can_load_with<f16, io::widen<bf16, f32>>);
  STATIC_REQUIRE_FALSE(can_load_with<f32, int>);
  // A block-format weight role is not an element dtype: it is loaded by the quantized loaders.
  using mxfp4_policy = precision_policy<bf16, mxfp4>;
  STATIC_REQUIRE_FALSE(can_load_role<role::weight, mxfp4_policy>);
  STATIC_REQUIRE(can_load_role<role::sinks, mxfp4_policy>);
}

TEST_CASE("load_role: the declared dtype comes from the policy, pinned roles stay f32", "[io][load][policy]") {
  SafetensorsWriter w;
  w.add("q_proj.weight", Tensor<bf16, 2>({2, 2}));
  w.add("sinks", Tensor<bf16, 1>({4}));
  w.add("positions", Tensor<i64, 1>({3}));
  std::vector<std::byte> keep;
  const auto f = parse_written(w, keep);

  const auto q = io::load_role<role::weight, bf16_policy, 2>(f.tensor("q_proj.weight"), {2, 2});
  STATIC_REQUIRE(std::is_same_v<decltype(q), const io::Loaded<bf16, 2>>);
  REQUIRE_THROWS_WITH((io::load_role<role::weight, f32_policy, 2>(f.tensor("q_proj.weight"))),
                      Contains("stored dtype BF16, declared f32 for role 'weight' of the precision policy"));
  REQUIRE_THROWS_WITH((io::load_role<role::sinks, bf16_policy, 1>(f.tensor("sinks"))),
                      Contains("stored dtype BF16, declared f32 for role 'sinks', pinned to f32 by every policy") &&
                          Contains("list widen<bf16, f32>"));
  ConversionReport report;
  const auto s = io::load_role<role::sinks, bf16_policy, 1>(f.tensor("sinks"), {4}, report, io::widen<bf16, f32>{});
  STATIC_REQUIRE(std::is_same_v<decltype(s), const io::Loaded<f32, 1>>);
  REQUIRE(report.size() == 1);
  REQUIRE(io::load_role<role::positions, f32_policy, 1>(f.tensor("positions")).numel() == 3);
}

TEST_CASE("Loaded is tensor-like: cast<To> accepts it, to_tensor copies it", "[io][load]") {
  SafetensorsWriter w;
  w.add("v", thirds(3));
  std::vector<std::byte> keep;
  const auto f = parse_written(w, keep);
  const auto l = io::load<f64, 1>(f.tensor("v"));
  const Tensor<f32, 1> c = cast<f32>(l);
  for (index_t i = 0; i < 3; ++i) REQUIRE(c(i) == static_cast<float>(l(i)));
  const Tensor<f64, 1> copy = l.to_tensor();
  REQUIRE(copy.data() != l.data());
  REQUIRE(copy(2) == l(2));
  STATIC_REQUIRE(TensorLike<io::Loaded<f64, 1>>);
  STATIC_REQUIRE_FALSE(tensor_traits<io::Loaded<f64, 1>>::writable);
}

TEST_CASE("load<D>: an AnyTensor whose bytes disagree with its shape is a format_error", "[io][load]") {
  const std::vector<std::byte> bytes(12);
  const io::AnyTensor t = io::detail::AnyTensorBytes::make("hand", dtype_code::f32, {4}, bytes, "hand-made");
  REQUIRE_THROWS_WITH((io::load<f32, 1>(t)), Contains("tensor 'hand'") && Contains("12 bytes for shape [4] of F32"));
}
