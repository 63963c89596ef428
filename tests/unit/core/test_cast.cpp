// tests/unit/core/test_cast.cpp — cast<To>, to_float<To> and round_to<To> (core/cast.hpp).
//
// References, each independent of the code under test:
//   float ↔ float   the scalar conversions of numeric/*.hpp, which test_{bfloat16,float16,float8}
//                   check bit for bit against ml_dtypes; cast<To> must equal them element by
//                   element (tolerance: none), contiguous or strided.
//   f64 → narrow    round_to_precision() below: rounding of the exact binary significand with
//                   integer arithmetic on doubles (frexp/ldexp/floor are exact), so f64 → bf16
//                   must be *correctly* rounded, not rounded twice through f32.
//   integers        the input values themselves (exact), and the type's range for errors.
//   round_to        half_even_reference() below (floor + exact fraction comparison).
#include <bit>          // std::bit_cast
#include <cmath>        // std::frexp, std::ldexp, std::floor, std::fmod, std::isnan, std::copysign
#include <cstddef>      // std::size_t
#include <cstdint>      // std::int8_t, std::int32_t, std::int64_t, std::uint64_t
#include <ios>          // std::hexfloat, std::dec
#include <limits>       // std::numeric_limits
#include <random>       // std::mt19937_64
#include <type_traits>  // std::is_same_v
#include <utility>      // std::pair
#include <vector>       // std::vector

#include <catch2/catch.hpp>  // TEST_CASE, TEMPLATE_TEST_CASE, STATIC_REQUIRE, REQUIRE_THROWS_*

#include <precis/core/cast.hpp>         // precis::cast, to_float, round_to
#include <precis/core/dtype.hpp>        // dtype tags, storage_t
#include <precis/core/error.hpp>        // precis::range_error
#include <precis/core/tensor.hpp>       // precis::Tensor
#include <precis/core/tensor_view.hpp>  // precis::TensorView

using namespace precis;  // NOLINT(google-build-using-namespace): tests read better with bare dtype tags

namespace {

// The call forms under test, as named concepts so that "not callable" is a checkable fact
// (style-anchors §5.1: a requires-expression must sit inside a concept to yield false).
template <class To, class X>
concept can_cast = requires(const X& x) { cast<To>(x); };
template <class To, class X>
concept can_to_float = requires(const X& x) { to_float<To>(x); };
template <class To, class X>
concept can_round_to = requires(const X& x) { round_to<To>(x); };

// ---------------------------------------------------------------------------------------------
// Scalar helpers
// ---------------------------------------------------------------------------------------------

template <class S>
[[nodiscard]] std::uint64_t bits_of(S s) {
  if constexpr (std::is_same_v<S, double>) return std::bit_cast<std::uint64_t>(s);
  else if constexpr (std::is_same_v<S, float>) return std::bit_cast<std::uint32_t>(s);
  else return s.bits;
}

template <class S>
[[nodiscard]] bool is_nan_value(S s) {
  if constexpr (std::is_same_v<S, double> || std::is_same_v<S, float>) return std::isnan(s);
  else return std::isnan(static_cast<float>(s));
}

/// Same value: equal bits, or both NaN (NaN payloads are not part of the contract).
template <class S>
[[nodiscard]] bool same_value(S a, S b) {
  return is_nan_value(a) ? is_nan_value(b) : bits_of(a) == bits_of(b);
}

/// The scalar conversion `cast<To>` must apply to one element of dtype `From` (not f64 → narrow,
/// which has its own test): widening to f32 is exact for every narrow type, then one rounding.
template <class To, class From>
[[nodiscard]] storage_t<To> scalar_reference(storage_t<From> v) {
  if constexpr (std::is_same_v<From, f64>) {
    return static_cast<storage_t<To>>(v);  // f64 → f32 / f64: the hardware's RNE
  } else {
    const float wide = static_cast<float>(v);
    if constexpr (std::is_same_v<To, f64>) return static_cast<double>(wide);
    else if constexpr (std::is_same_v<To, f32>) return wide;
    else return storage_t<To>(wide);
  }
}

/// A (rows, cols) tensor of `From` covering its value space: every bit pattern of the 8- and
/// 16-bit types, random bit patterns (fixed seed) for f32 and f64.
template <class From>
[[nodiscard]] Tensor<From, 2> source_values() {
  using S = storage_t<From>;
  std::mt19937_64 rng(0x5eed'ca57);
  if constexpr (std::is_same_v<S, double>) {
    Tensor<From, 2> t({64, 64});  // (64, 64)
    for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = std::bit_cast<double>(rng());
    return t;
  } else if constexpr (std::is_same_v<S, float>) {
    Tensor<From, 2> t({64, 64});  // (64, 64)
    for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = std::bit_cast<float>(static_cast<std::uint32_t>(rng()));
    return t;
  } else {
    constexpr index_t side = sizeof(S) == 1 ? 16 : 256;
    Tensor<From, 2> t({side, side});  // (16, 16) or (256, 256): all patterns
    for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = S::from_bits(static_cast<decltype(S{}.bits)>(i));
    return t;
  }
}

/// `d` rounded to `p` significant bits, ties to even, with an unbounded exponent. This is the
/// correctly rounded result for any target whose normal range contains it. All steps are exact:
/// frexp/ldexp scale by powers of two, and floor/subtraction act on a 53-bit integer-valued double.
[[nodiscard]] double round_to_precision(double d, int p) {
  int e = 0;
  const double m = std::frexp(std::fabs(d), &e);  // |d| = m·2^e, m in [0.5, 1)
  const double scaled = std::ldexp(m, p);          // in [2^(p-1), 2^p)
  double q = std::floor(scaled);
  const double frac = scaled - q;
  if (frac > 0.5 || (frac == 0.5 && std::fmod(q, 2.0) != 0.0)) q += 1.0;
  return std::copysign(std::ldexp(q, e - p), d);
}

/// Round half to even on doubles, for finite x.
[[nodiscard]] double half_even_reference(double x) {
  const double fl = std::floor(x);
  const double diff = x - fl;  // exact: x and fl share the binade or fl = 0
  if (diff > 0.5) return fl + 1.0;
  if (diff < 0.5) return fl;
  return std::fmod(fl, 2.0) == 0.0 ? fl : fl + 1.0;
}

/// Significand bits, smallest normal and largest finite value of each narrow target.
template <class D>
struct narrow_params;
template <>
struct narrow_params<bf16> {
  static constexpr int p = 8;
  static constexpr int min_exp = -126;
  static constexpr double max = 0x1.fep127;
};
template <>
struct narrow_params<f16> {
  static constexpr int p = 11;
  static constexpr int min_exp = -14;
  static constexpr double max = 65504.0;
};
template <>
struct narrow_params<f8_e4m3> {
  static constexpr int p = 4;
  static constexpr int min_exp = -6;
  static constexpr double max = 448.0;
};
template <>
struct narrow_params<f8_e5m2> {
  static constexpr int p = 3;
  static constexpr int min_exp = -14;
  static constexpr double max = 57344.0;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Floating ↔ floating
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("cast<To> between float dtypes equals the scalar conversion, contiguous and strided",
                   "[core][cast]", (std::pair<f32, bf16>), (std::pair<f32, f16>), (std::pair<f32, f8_e4m3>),
                   (std::pair<f32, f8_e5m2>), (std::pair<bf16, f32>), (std::pair<f16, f32>), (std::pair<bf16, f16>),
                   (std::pair<f16, bf16>), (std::pair<f8_e4m3, bf16>), (std::pair<f8_e5m2, f16>),
                   (std::pair<f8_e4m3, f8_e5m2>), (std::pair<bf16, f64>), (std::pair<f32, f64>),
                   (std::pair<f64, f32>), (std::pair<f32, f32>), (std::pair<f64, f64>)) {
  using From = typename TestType::first_type;
  using To = typename TestType::second_type;
  const Tensor<From, 2> src = source_values<From>();  // (rows, cols)
  const index_t rows = src.extent(0);
  const index_t cols = src.extent(1);

  SECTION("contiguous tensor") {
    const Tensor<To, 2> out = cast<To>(src);  // (rows, cols)
    REQUIRE(out.extents() == src.extents());
    std::size_t mismatches = 0;
    for (index_t i = 0; i < src.numel(); ++i) {
      if (!same_value(out.data()[i], scalar_reference<To, From>(src.data()[i]))) {
        if (mismatches++ == 0) UNSCOPED_INFO("first mismatch at flat index " << i);
      }
    }
    CHECK(mismatches == 0);
  }

  SECTION("strided view: odd rows and odd columns") {
    // Element (i, j) of the view is src(2i + 1, 2j + 1).
    const TensorView<const From, 2> strided(src.data() + cols + 1, {rows / 2, cols / 2}, {2 * cols, 2});
    REQUIRE_FALSE(strided.is_contiguous());
    const Tensor<To, 2> out = cast<To>(strided);  // (rows/2, cols/2), contiguous
    REQUIRE(out.extents() == strided.extents());
    std::size_t mismatches = 0;
    for (index_t i = 0; i < rows / 2; ++i)
      for (index_t j = 0; j < cols / 2; ++j) {
        if (!same_value(out(i, j), scalar_reference<To, From>(src(2 * i + 1, 2 * j + 1)))) {
          if (mismatches++ == 0) UNSCOPED_INFO("first mismatch at (" << i << ", " << j << ")");
        }
      }
    CHECK(mismatches == 0);
  }
}

TEMPLATE_TEST_CASE("cast<To> from f64 to a narrow float rounds once, not twice through f32", "[core][cast]", bf16,
                   f16, f8_e4m3, f8_e5m2) {
  using P = narrow_params<TestType>;
  using S = storage_t<TestType>;
  std::mt19937_64 rng(0xd0b1e);
  const int max_exp = static_cast<int>(std::floor(std::log2(P::max)));

  // Double-rounding traps: for a narrow value v with successor v + ulp, d = midpoint ± δ with δ
  // far below half an f32 ulp. f64 → f32 lands exactly on the midpoint, and the f32 → narrow
  // tie then goes to the even neighbour — wrong for one of the two signs of δ.
  std::vector<double> traps;
  const auto add_pair = [&](double v, double ulp) {
    const double mid = v + ulp / 2;
    const double delta = std::ldexp(ulp, -30);
    for (const double s : {1.0, -1.0}) {
      traps.push_back(s * (mid + delta));
      traps.push_back(s * (mid - delta));
    }
  };
  for (int n = 0; n < 2000; ++n) {
    const int e = P::min_exp + static_cast<int>(rng() % static_cast<std::uint64_t>(max_exp - P::min_exp + 1));
    const double k = static_cast<double>(rng() % (std::uint64_t{1} << (P::p - 1)));
    const double v = std::ldexp(1.0 + std::ldexp(k, 1 - P::p), e);
    if (v >= P::max) continue;
    add_pair(v, std::ldexp(1.0, e + 1 - P::p));
  }
  add_pair(P::max, std::ldexp(1.0, max_exp + 1 - P::p));  // the overflow threshold

  // The construction is meaningful: rounding through f32 gets exactly one of each ± pair wrong.
  std::size_t naive_wrong = 0;
  for (const double d : traps) {
    const S correct = S(static_cast<float>(round_to_precision(d, P::p)));  // exact: ≤ p bits
    const S naive = S(static_cast<float>(d));
    naive_wrong += same_value(correct, naive) ? 0 : 1;
  }
  REQUIRE(naive_wrong == traps.size() / 2);

  // Random doubles with full 53-bit significands inside the target's normal range.
  std::vector<double> inputs = traps;
  for (int n = 0; n < 4000; ++n) {
    const int e = P::min_exp + static_cast<int>(rng() % static_cast<std::uint64_t>(max_exp - P::min_exp + 1));
    const double m = 1.0 + std::ldexp(static_cast<double>(rng() >> 12), -52);  // [1, 2)
    const double d = std::ldexp(m, e) * ((rng() & 1) != 0 ? -1.0 : 1.0);
    if (std::fabs(d) < P::max) inputs.push_back(d);
  }

  Tensor<f64, 1> src({static_cast<index_t>(inputs.size())});  // (n)
  for (std::size_t i = 0; i < inputs.size(); ++i) src.data()[i] = inputs[i];
  const Tensor<TestType, 1> out = cast<TestType>(src);  // (n)
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const S expected = S(static_cast<float>(round_to_precision(inputs[i], P::p)));
    if (!same_value(out.data()[i], expected)) {
      if (mismatches++ == 0) {
        UNSCOPED_INFO("first mismatch: input " << std::hexfloat << inputs[i] << std::dec << " (index " << i << ")");
      }
    }
  }
  CHECK(mismatches == 0);
}

TEMPLATE_TEST_CASE("cast<To> from f64 keeps NaN, Inf, overflow and underflow", "[core][cast]", bf16, f16, f8_e4m3,
                   f8_e5m2) {
  using S = storage_t<TestType>;
  constexpr double inf = std::numeric_limits<double>::infinity();
  // For these, f64 → f32 is exact or already saturates to ±Inf / ±0, so the single f32 → narrow
  // conversion is the correct result.
  const std::vector<double> specials = {std::numeric_limits<double>::quiet_NaN(), inf, -inf, 1e300, -1e300, 1e-300,
                                        -1e-300, 0.0, -0.0};
  Tensor<f64, 1> src({static_cast<index_t>(specials.size())});  // (9)
  for (std::size_t i = 0; i < specials.size(); ++i) src.data()[i] = specials[i];
  const Tensor<TestType, 1> out = cast<TestType>(src);  // (9)
  for (std::size_t i = 0; i < specials.size(); ++i) {
    INFO("input " << specials[i]);
    CHECK(same_value(out.data()[i], S(static_cast<float>(specials[i]))));
  }
}

TEST_CASE("cast<To> of an empty tensor is empty", "[core][cast]") {
  const Tensor<f32, 2> empty({0, 3});  // (0, 3)
  const Tensor<bf16, 2> out = cast<bf16>(empty);
  CHECK(out.extents() == extents_t<2>{0, 3});
}

// ---------------------------------------------------------------------------------------------
// Integer ↔ integer
// ---------------------------------------------------------------------------------------------

TEST_CASE("cast<To> between integer dtypes is exact and range-checked", "[core][cast]") {
  constexpr std::int64_t i32_min = std::numeric_limits<std::int32_t>::min();
  constexpr std::int64_t i32_max = std::numeric_limits<std::int32_t>::max();

  Tensor<i64, 1> wide({5});  // (5)
  const std::int64_t in_range[] = {i32_min, -1, 0, 12345, i32_max};
  for (index_t i = 0; i < 5; ++i) wide.data()[i] = in_range[i];
  const Tensor<i32, 1> narrow = cast<i32>(wide);  // (5)
  for (index_t i = 0; i < 5; ++i) CHECK(narrow.data()[i] == in_range[i]);

  // Widening back is the identity, also from a strided view (every other element).
  const TensorView<const i32, 1> every_other(narrow.data(), {3}, {2});  // (3)
  const Tensor<i64, 1> back = cast<i64>(every_other);                   // (3)
  CHECK(back.data()[0] == in_range[0]);
  CHECK(back.data()[1] == in_range[2]);
  CHECK(back.data()[2] == in_range[4]);

  wide.data()[1] = i32_max + 1;
  REQUIRE_THROWS_AS(cast<i32>(wide), range_error);
  REQUIRE_THROWS_WITH(cast<i32>(wide), Catch::Contains("cast<i32>") && Catch::Contains("2147483648") &&
                                           Catch::Contains("flat index 1"));
  wide.data()[1] = i32_min - 1;
  REQUIRE_THROWS_AS(cast<i32>(wide), range_error);

  Tensor<i32, 1> small({3});  // (3)
  small.data()[0] = -128;
  small.data()[1] = 127;
  small.data()[2] = 255;
  REQUIRE_THROWS_AS(cast<i8>(small), range_error);  // 255 > 127
  small.data()[2] = 0;
  const Tensor<i8, 1> bytes = cast<i8>(small);  // (3)
  CHECK(bytes.data()[0] == -128);
  CHECK(bytes.data()[1] == 127);

  Tensor<i8, 1> negative({1});  // (1)
  negative.data()[0] = -1;
  REQUIRE_THROWS_AS(cast<u8>(negative), range_error);  // u8 has no -1
  REQUIRE_THROWS_WITH(cast<u8>(negative), Catch::Contains("cast<u8>") && Catch::Contains("-1"));
  Tensor<i32, 1> byte_range({2});  // (2)
  byte_range.data()[0] = 255;
  byte_range.data()[1] = 256;
  REQUIRE_THROWS_AS(cast<u8>(byte_range), range_error);
  byte_range.data()[1] = 0;
  CHECK(cast<u8>(byte_range).data()[0] == 255);
}

// ---------------------------------------------------------------------------------------------
// Integer → float, float → integer
// ---------------------------------------------------------------------------------------------

TEST_CASE("to_float<f32> accepts exactly the integers with |v| <= 2^24", "[core][cast]") {
  constexpr std::int64_t limit = std::int64_t{1} << 24;
  Tensor<i64, 1> ok({5});  // (5)
  const std::int64_t values[] = {-limit, -1, 0, 16777215, limit};
  for (index_t i = 0; i < 5; ++i) ok.data()[i] = values[i];
  const Tensor<f32, 1> f = to_float<f32>(ok);  // (5)
  for (index_t i = 0; i < 5; ++i) CHECK(static_cast<double>(f.data()[i]) == static_cast<double>(values[i]));

  for (const std::int64_t bad : {limit + 1, -limit - 1, std::int64_t{1} << 40}) {
    INFO("value " << bad);
    Tensor<i64, 1> t({2});  // (2)
    t.data()[1] = bad;
    REQUIRE_THROWS_AS(to_float<f32>(t), range_error);
    REQUIRE_THROWS_WITH(to_float<f32>(t), Catch::Contains("to_float<f32>") && Catch::Contains("flat index 1"));
  }

  Tensor<i32, 1> positions({3});  // (3)
  positions.data()[0] = 15962;  // a position bf16 cannot hold (dtype-bugs E13); f32 can
  positions.data()[1] = -7;
  positions.data()[2] = 1 << 24;
  const Tensor<f32, 1> pf = to_float<f32>(positions);  // (3)
  CHECK(pf.data()[0] == 15962.0f);
  CHECK(pf.data()[1] == -7.0f);
  CHECK(pf.data()[2] == 16777216.0f);
}

TEST_CASE("to_float<f64> accepts exactly the integers with |v| <= 2^53", "[core][cast]") {
  constexpr std::int64_t limit = std::int64_t{1} << 53;
  Tensor<i64, 1> t({3});  // (3)
  t.data()[0] = -limit;
  t.data()[1] = limit - 1;
  t.data()[2] = limit;
  const Tensor<f64, 1> d = to_float<f64>(t);  // (3)
  CHECK(d.data()[1] == 9007199254740991.0);
  CHECK(d.data()[2] == 9007199254740992.0);
  t.data()[2] = limit + 1;  // would round to 2^53
  REQUIRE_THROWS_AS(to_float<f64>(t), range_error);
}

TEST_CASE("round_to<i32> rounds half to even and matches an independent reference", "[core][cast]") {
  std::vector<float> values = {0.5f,        1.5f,         2.5f,  -0.5f,         -1.5f,       -2.5f,
                               2.4999998f,  2.5000002f,   -0.0f, 1e9f,          -2147483648.0f,
                               2147483520.0f /* largest f32 below 2^31 */,      8388607.5f};
  std::mt19937_64 rng(0x0dd5);
  for (int n = 0; n < 2000; ++n) {
    const auto k = static_cast<double>(static_cast<std::int64_t>(rng() % 2000001) - 1000000);
    values.push_back(static_cast<float>(k + 0.5));                                   // exact ties
    values.push_back(static_cast<float>(std::ldexp(static_cast<double>(rng() >> 34), -10) - 5.0e5));  // fractions
  }
  Tensor<f32, 1> src({static_cast<index_t>(values.size())});  // (n)
  for (std::size_t i = 0; i < values.size(); ++i) src.data()[i] = values[i];
  const Tensor<i32, 1> out = round_to<i32>(src);  // (n)
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double expected = half_even_reference(static_cast<double>(values[i]));
    if (static_cast<double>(out.data()[i]) != expected) {
      if (mismatches++ == 0) UNSCOPED_INFO("first mismatch: " << values[i] << " -> " << out.data()[i]);
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("round_to rejects NaN, infinities and values outside the integer range", "[core][cast]") {
  const auto one = [](float v) {
    Tensor<f32, 1> t({1});  // (1)
    t.data()[0] = v;
    return t;
  };
  REQUIRE_THROWS_AS(round_to<i32>(one(std::numeric_limits<float>::quiet_NaN())), range_error);
  REQUIRE_THROWS_WITH(round_to<i32>(one(std::numeric_limits<float>::quiet_NaN())),
                      Catch::Contains("round_to<i32>") && Catch::Contains("flat index 0"));
  REQUIRE_THROWS_AS(round_to<i32>(one(std::numeric_limits<float>::infinity())), range_error);
  REQUIRE_THROWS_AS(round_to<i32>(one(-std::numeric_limits<float>::infinity())), range_error);
  REQUIRE_THROWS_AS(round_to<i32>(one(2147483648.0f)), range_error);  // 2^31
  CHECK(round_to<i32>(one(-2147483648.0f)).data()[0] == std::numeric_limits<std::int32_t>::min());

  // i8 from bf16: 127.5 ties to 128 (out of range), -127.5 ties to -128 (in range).
  Tensor<bf16, 1> b({2});  // (2)
  b.data()[0] = bfloat16(-127.5f);  // exact in bf16 (8 significant bits)
  b.data()[1] = bfloat16(127.5f);
  REQUIRE(static_cast<float>(b.data()[0]) == -127.5f);
  REQUIRE(static_cast<float>(b.data()[1]) == 127.5f);
  REQUIRE_THROWS_AS(round_to<i8>(b), range_error);
  b.data()[1] = bfloat16(126.5f);
  const Tensor<i8, 1> r = round_to<i8>(b);  // (2)
  CHECK(r.data()[0] == -128);
  CHECK(r.data()[1] == 126);

  // i64: 2^63 does not fit (INT64_MAX = 2^63 - 1 rounds to 2^63 as a double, so a bound of
  // `r <= double(INT64_MAX)` would let it through into an undefined conversion).
  Tensor<f64, 1> d({1});  // (1)
  d.data()[0] = 0x1p63;
  REQUIRE_THROWS_AS(round_to<i64>(d), range_error);
  d.data()[0] = -0x1p63;
  CHECK(round_to<i64>(d).data()[0] == std::numeric_limits<std::int64_t>::min());
  d.data()[0] = 0x1.fffffffffffffp62;  // the largest double below 2^63
  CHECK(round_to<i64>(d).data()[0] == std::int64_t{0x7ffffffffffffc00});
  REQUIRE_THROWS_AS(round_to<u8>(one(255.5f)), range_error);  // ties to 256
  REQUIRE_THROWS_AS(round_to<u8>(one(-0.6f)), range_error);   // rounds to -1
  CHECK(round_to<u8>(one(-0.5f)).data()[0] == 0);             // ties to -0 = 0
}

// ---------------------------------------------------------------------------------------------
// What is not callable
// ---------------------------------------------------------------------------------------------

TEST_CASE("casts cross between integers and floats only through the named functions", "[core][cast][static]") {
  // The positive forms, so that the negative ones below fail for the stated reason.
  STATIC_REQUIRE(can_cast<bf16, Tensor<f32, 1>>);
  STATIC_REQUIRE(can_cast<f32, TensorView<bf16, 2>>);
  STATIC_REQUIRE(can_cast<f16, TensorView<const f64, 3>>);
  STATIC_REQUIRE(can_cast<i32, Tensor<i64, 1>>);
  STATIC_REQUIRE(can_to_float<f32, Tensor<i64, 1>>);
  STATIC_REQUIRE(can_to_float<f64, Tensor<i32, 1>>);
  STATIC_REQUIRE(can_round_to<i32, Tensor<bf16, 1>>);

  // No integer → bf16/f16 at all: a bf16 position 15962 becomes 15936 (dtype-bugs E13, E17).
  STATIC_REQUIRE_FALSE(can_cast<bf16, Tensor<i64, 1>>);
  STATIC_REQUIRE_FALSE(can_cast<f32, Tensor<i64, 1>>);  // int → float is to_float, by name
  STATIC_REQUIRE_FALSE(can_cast<i32, Tensor<f32, 1>>);  // float → int is round_to, by name
  STATIC_REQUIRE_FALSE(can_to_float<bf16, Tensor<i64, 1>>);
  STATIC_REQUIRE_FALSE(can_to_float<f16, Tensor<i32, 1>>);
  STATIC_REQUIRE_FALSE(can_to_float<f32, Tensor<f32, 1>>);
  STATIC_REQUIRE_FALSE(can_round_to<bf16, Tensor<f32, 1>>);
  STATIC_REQUIRE_FALSE(can_round_to<i32, Tensor<i64, 1>>);
  // Block formats are reached through dequantize, not cast; device tensors are not host inputs.
  STATIC_REQUIRE_FALSE(can_cast<q4_0, Tensor<f32, 1>>);
  STATIC_REQUIRE_FALSE(can_cast<bf16, TensorView<const f32, 1, cuda>>);
  STATIC_REQUIRE_FALSE(can_cast<bf16, float>);  // a scalar is not a tensor
}
