// tests/unit/blocks/test_rope_variants.cpp — RoPE scaling policies (none, linear, YaRN with both
// correction-range bounds, Llama-3), MRoPE (chunked and interleaved) and the CPU RoPE kernel
// (nn/rope.hpp, backends/cpu/rope.hpp; model-semantics §1a, §1c, §1d, §1.6, §1.7 items 5 and 9).
//
// Rotation check (rounding-aware, as in test_norm.cpp): for a pair (a, b) and the table's f32
// values (c, s), the exact result is a' = a·c − b·s, b' = b·c + a·s (float64 on the stored
// inputs and the table as given). An f32 evaluation — the CPU kernel's fma(a, c, −fl(b·s)), or
// the reference's x1·c − x2·s with or without contraction — rounds the product b·s (or both
// products) and the sum: |err| ≤ 2u·(|a·c| + |b·s|)·(1 + u) ≤ 2.01u·m with m = |a·c| + |b·s|
// for a' and m = |b·c| + |a·s| for b', u = u(f32). The result then rounds once to D, so y must be a D rounding of a value within
// 2.01u·m of the exact one; where no rounding boundary is that close, exactly one value is
// allowed. Pass-through features [rd, Dh) are compared bit for bit.
#include <catch2/catch.hpp>  // TEST_CASE, TEMPLATE_TEST_CASE, CHECK, STATIC_REQUIRE

#include <algorithm>  // std::max
#include <cmath>    // std::pow, std::cos, std::fabs, std::hypot
#include <cstring>  // std::memcmp
#include <sstream>  // std::ostringstream
#include <string>   // std::string
#include <tuple>    // std::tuple
#include <utility>  // std::forward
#include <vector>   // std::vector

#include <precis/backends/cpu/rope.hpp>  // precis::backends::cpu::apply_rope, apply_rope_inplace
#include <precis/core/cast.hpp>          // precis::cast
#include <precis/core/error.hpp>         // precis::shape_error, config_error
#include <precis/nn/rope.hpp>            // InvFreq, RopeTable, apply_rope, rope_scaling, mrope

#include "blocks_test_support.hpp"  // random_tensor, random_positions, round_d, within_rounding, same_bits

using namespace precis;
using namespace precis::test;
namespace bcpu = precis::backends::cpu;

namespace {

template <class X>
concept can_cpu_apply_rope = requires(const X& x, const RopeTable<f32>& t) { bcpu::apply_rope(x, t); };
template <class X>
concept can_cpu_apply_rope_inplace = requires(X&& x, const RopeTable<f32>& t) { bcpu::apply_rope_inplace(std::forward<X>(x), t); };
template <class P, class M>
concept can_build_mrope_table = requires(const P& p, const InvFreq& inv, const M& m) { RopeTable<f32>::from_positions(p, inv, m); };
template <class S>
concept can_make_inv_freq_with = requires(const S& s) { InvFreq::make(1e4, 64, s); };

/// Positions [3, T]: row a is `rows[a]` (so t = h = w when all three are the same tensor).
Tensor<i64, 2> stack3(const Tensor<i64, 1>& t, const Tensor<i64, 1>& h, const Tensor<i64, 1>& w) {
  Tensor<i64, 2> p({3, t.extent(0)});
  for (index_t j = 0; j < t.extent(0); ++j) {
    p(0, j) = t(j);
    p(1, j) = h(j);
    p(2, j) = w(j);
  }
  return p;
}

/// Checks y = RoPE(x) under `Layout` against float64 rotation by the table's values.
template <rope_layout Layout, class Y, class X>
[[nodiscard]] Comparison check_rotation(const Y& y, const X& x, const RopeTable<f32>& table) {
  using D = dtype_of<X>;
  const index_t n_tok = x.extent(0), n_heads = x.extent(1), dh = x.extent(2), half = table.rotary_dim() / 2;
  Comparison c;
  const auto fail = [&](index_t t, index_t h, index_t j, double got, double want) {
    if (c.violations++ == 0) {
      std::ostringstream os;
      os.precision(17);
      os << "t " << t << " head " << h << " feature " << j << ": got " << got << ", want " << want;
      c.first = os.str();
    }
  };
  for (index_t t = 0; t < n_tok; ++t)
    for (index_t h = 0; h < n_heads; ++h) {
      for (index_t i = 0; i < half; ++i) {
        const index_t ia = Layout == rope_layout::half_split ? i : 2 * i;
        const index_t ib = Layout == rope_layout::half_split ? i + half : 2 * i + 1;
        const double a = static_cast<double>(to_compute<D>(x(t, h, ia))), b = static_cast<double>(to_compute<D>(x(t, h, ib)));
        const double cs = static_cast<double>(table.cos()(t, i)), sn = static_cast<double>(table.sin()(t, i));
        const double ea = 2.01 * unit_roundoff<f32> * (std::fabs(a * cs) + std::fabs(b * sn));
        const double eb = 2.01 * unit_roundoff<f32> * (std::fabs(b * cs) + std::fabs(a * sn));
        const double oa = a * cs - b * sn, ob = b * cs + a * sn;
        const double ga = static_cast<double>(to_compute<D>(y(t, h, ia))), gb = static_cast<double>(to_compute<D>(y(t, h, ib)));
        if (!within_rounding<D>(ga, oa, ea)) fail(t, h, ia, ga, oa);
        if (!within_rounding<D>(gb, ob, eb)) fail(t, h, ib, gb, ob);
      }
      for (index_t j = 2 * half; j < dh; ++j)
        if (std::memcmp(&y(t, h, j), &x(t, h, j), sizeof(storage_t<D>)) != 0)
          fail(t, h, j, static_cast<double>(to_compute<D>(y(t, h, j))), static_cast<double>(to_compute<D>(x(t, h, j))));
    }
  return c;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Scaling policies
// ---------------------------------------------------------------------------------------------

TEST_CASE("rope_scaling::none is the standard inv_freq; linear divides it (positions / factor)", "[blocks][rope]") {
  const auto std_inv = InvFreq::standard(1e4, 64);
  CHECK(std::memcmp(InvFreq::make(1e4, 64, rope_scaling::none{}).values().data(), std_inv.values().data(),
                    32 * sizeof(float)) == 0);
  // factor 3: inv/3 computed in double and narrowed once.
  const auto lin3 = InvFreq::make(1e4, 64, rope_scaling::linear{.factor = 3.0});
  for (index_t i = 0; i < 32; ++i) {
    const double want = std::pow(1e4, -2.0 * static_cast<double>(i) / 64.0) / 3.0;
    CHECK(std::fabs(lin3.values()(i) - want) <= unit_roundoff<f32> * want);
  }
  CHECK(lin3.attention_factor() == 1.0f);
  // factor 4 (a power of two): the table at position 4p equals the unscaled table at p, bit for
  // bit — 4p · (inv/4) is p · inv exactly in double, so "positions / factor" is literal.
  auto rng = make_rng(801);
  const auto pos = random_positions(9, rng, 30000);
  Tensor<i64, 1> pos4({9});
  for (index_t j = 0; j < 9; ++j) pos4(j) = 4 * pos(j);
  const auto lin4 = InvFreq::linear(1e4, 64, rope_scaling::linear{.factor = 4.0});
  const auto t_std = RopeTable<f32>::from_positions(pos, std_inv);
  const auto t_lin = RopeTable<f32>::from_positions(pos4, lin4);
  CHECK(std::memcmp(t_std.cos().data(), t_lin.cos().data(), 9 * 32 * sizeof(float)) == 0);
  CHECK(std::memcmp(t_std.sin().data(), t_lin.sin().data(), 9 * 32 * sizeof(float)) == 0);
  REQUIRE_THROWS_AS(InvFreq::linear(1e4, 64, rope_scaling::linear{.factor = 0.0}), config_error);
}

TEST_CASE("YaRN: exact bounds give §1.6's numbers; rounded bounds change exactly inv_freq[9..17] by §1.6's amounts",
          "[blocks][rope]") {
  // model-semantics §1.6: gpt-oss (θ = 150000, d = 64, factor 32, β 32/1, L0 4096) ships
  // truncate = false (low = 8.0928, high = 17.398). truncate = true would use low = 8, high = 18,
  // changing inv_freq[9..17] by 0.3 %, 0.6 %, 1.7 %, 3.2 %, 5.4 %, 8.8 %, 14.6 %, 27 % and 76 %
  // (magnitudes, to the digits printed there) and nothing else: for i ≤ 8 both ramps are 0 and
  // for i ≥ 18 both are 1.
  const rope_scaling::yarn gpt_oss{.factor = 32, .beta_fast = 32, .beta_slow = 1, .original_max_position = 4096,
                                   .bounds = yarn_bounds::exact};
  rope_scaling::yarn hf_default = gpt_oss;
  hf_default.bounds = yarn_bounds::rounded;
  const auto exact = InvFreq::make(150000.0, 64, gpt_oss);
  const auto rounded = InvFreq::make(150000.0, 64, hf_default);
  // Spot values of §1.6 (10 significant digits): inv_freq[9] and [17].
  CHECK(std::fabs(exact.values()(9) - 3.170569618e-02) <= (unit_roundoff<f32> + 5e-10) * 3.170569618e-02);
  CHECK(std::fabs(exact.values()(17) - 1.293187012e-04) <= (unit_roundoff<f32> + 5e-10) * 1.293187012e-04);
  CHECK(std::fabs(exact.attention_factor() - 1.34657359027997) <= unit_roundoff<f32> * 1.35);
  CHECK(rounded.attention_factor() == exact.attention_factor());  // mscale depends on factor only
  const double percent[9] = {0.3, 0.6, 1.7, 3.2, 5.4, 8.8, 14.6, 27, 76};
  const double half_digit[9] = {0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.5, 0.5};
  for (index_t i = 0; i < 32; ++i) {
    INFO("i = " << i);
    if (i >= 9 && i <= 17) {
      const double change = 100.0 * std::fabs(static_cast<double>(rounded.values()(i)) / exact.values()(i) - 1.0);
      CHECK(std::fabs(change - percent[i - 9]) <= half_digit[i - 9]);
    } else {
      CHECK(rounded.values()(i) == exact.values()(i));
    }
  }
}

TEST_CASE("Llama-3 scaling matches an independent float64 derivation of HF _compute_llama3_parameters",
          "[blocks][rope]") {
  // Llama 3.1 8B: rope_theta 500000, head_dim 128, factor 8, low_freq_factor 1,
  // high_freq_factor 4, original_max_position_embeddings 8192. Derived with plain Python floats:
  //   inv = [1/500000**(2*i/128) for i in range(64)]
  //   for f in inv: wl = 2*math.pi/f
  //     fl = f/8 if wl > 8192 else f;  s = (8192/wl - 1)/3;  sm = (1-s)*fl/8 + s*fl
  //     out = sm if (not wl < 2048) and (not wl > 8192) else fl
  // Bands: i ≤ 28 keep inv (wavelength < 2048), 29 ≤ i ≤ 34 blend, i ≥ 35 are inv/8 (> 8192).
  struct Ref {
    index_t i;
    double value;
  };
  const Ref want[] = {{0, 1.0},
                      {1, 0.8146172338565447},
                      {28, 0.0032114459947525913},
                      {29, 0.002166570763503359},
                      {30, 0.0013718935677611381},
                      {31, 0.0008567514129196321},
                      {32, 0.0005248461609929547},
                      {33, 0.00031269375038406517},
                      {34, 0.00017850781276799638},
                      {35, 9.556212353964683e-05},
                      {47, 8.160728247435943e-06},
                      {63, 3.068925988914511e-07}};
  const auto inv = InvFreq::make(500000.0, 128, rope_scaling::llama3{});
  const auto plain = InvFreq::standard(500000.0, 128);
  REQUIRE(inv.rotary_dim() == 128);
  CHECK(inv.attention_factor() == 1.0f);
  for (const auto& r : want) {
    INFO("i = " << r.i);
    CHECK(std::fabs(inv.values()(r.i) - r.value) <= unit_roundoff<f32> * r.value);  // narrowed once
  }
  for (index_t i = 0; i < 64; ++i) {
    INFO("i = " << i);
    if (i <= 28) CHECK(inv.values()(i) == plain.values()(i));                    // high-frequency band
    if (i >= 35) CHECK(inv.values()(i) == plain.values()(i) / 8.0f);             // low-frequency band (exact /8)
    if (i > 28 && i < 35) {                                                       // blend: strictly between
      CHECK(inv.values()(i) < plain.values()(i));
      CHECK(inv.values()(i) > plain.values()(i) / 8.0f);
    }
  }
  REQUIRE_THROWS_AS(InvFreq::llama3(5e5, 128, rope_scaling::llama3{.low_freq_factor = 4, .high_freq_factor = 1}),
                    config_error);
}

// ---------------------------------------------------------------------------------------------
// MRoPE
// ---------------------------------------------------------------------------------------------

TEST_CASE("MRoPE slot→axis maps: interleaved is THW×20 then TTTT, chunked is T×16 H×24 W×24", "[blocks][rope][mrope]") {
  // model-semantics §1.6 / §1c.
  const auto map = [](const auto& layout) {
    std::string s;
    for (index_t i = 0; i < 64; ++i) s += "THW"[static_cast<int>(layout.axis_of(i))];
    return s;
  };
  std::string want_interleaved;
  for (int k = 0; k < 20; ++k) want_interleaved += "THW";
  want_interleaved += "TTTT";
  CHECK(map(mrope::interleaved{{24, 20, 20}}) == want_interleaved);
  CHECK(map(mrope::chunked{{16, 24, 24}}) == std::string(16, 'T') + std::string(24, 'H') + std::string(24, 'W'));
  CHECK(map(mrope::interleaved{}) == want_interleaved);  // the published defaults
  CHECK(map(mrope::chunked{}) == map(mrope::chunked{{16, 24, 24}}));
}

TEST_CASE("MRoPE with t = h = w equals 1-D RoPE bit for bit (chunked and interleaved)", "[blocks][rope][mrope]") {
  // §1.7 item 9 / §1c: for text, get_rope_index gives three identical rows, and Qwen's docstring
  // says RoPE "has no difference with modern LLMs". Qwen3-Omni: θ = 1e6, head_dim 128.
  auto rng = make_rng(802);
  const index_t n_tok = 23;
  const auto pos = random_positions(n_tok, rng, 40000);
  const auto pos3 = stack3(pos, pos, pos);
  for (const bool yarn : {false, true}) {
    const auto inv = yarn ? InvFreq::make(1e6, 128, rope_scaling::yarn{.factor = 4, .original_max_position = 32768})
                          : InvFreq::make(1e6, 128, rope_scaling::none{});
    const auto one_d = RopeTable<f32>::from_positions(pos, inv);
    const auto inter = RopeTable<f32>::from_positions(pos3, inv, mrope::interleaved{{24, 20, 20}});
    const auto chunk = RopeTable<f32>::from_positions(pos3, inv, mrope::chunked{{16, 24, 24}});
    const std::size_t bytes = static_cast<std::size_t>(n_tok * 64) * sizeof(float);
    INFO("yarn = " << yarn);
    CHECK(std::memcmp(one_d.cos().data(), inter.cos().data(), bytes) == 0);
    CHECK(std::memcmp(one_d.sin().data(), inter.sin().data(), bytes) == 0);
    CHECK(std::memcmp(one_d.cos().data(), chunk.cos().data(), bytes) == 0);
    CHECK(std::memcmp(one_d.sin().data(), chunk.sin().data(), bytes) == 0);
    const auto q = random_tensor<bf16, 3>({n_tok, 4, 128}, rng);
    CHECK(same_bits(bcpu::apply_rope(q, inter), bcpu::apply_rope(q, one_d)));
  }
}

TEST_CASE("MRoPE with distinct t, h, w rows follows HF's slot selection", "[blocks][rope][mrope]") {
  // Independent re-implementation of HF on the full emb = cat(freqs, freqs) (128 entries):
  //   interleaved (apply_interleaved_mrope): freqs_t = freqs[t]; for (a, off) in ((h,1),(w,2)):
  //               freqs_t[off : 3·section[a] : 3] = freqs[a]
  //   chunked (apply_multimodal_rotary_pos_emb): split emb into mrope_section·2 chunks, chunk k
  //               from row k % 3
  // and the table's slot i must be cos/sin of the first half's angle, computed like the table
  // (double angle from the f32 inv_freq, narrowed once) — so equality is exact.
  auto rng = make_rng(803);
  const index_t n_tok = 11;
  const auto pos3 = stack3(random_positions(n_tok, rng, 5000), random_positions(n_tok, rng, 64),
                           random_positions(n_tok, rng, 64));
  const auto inv = InvFreq::standard(1e6, 128);
  const auto inter = RopeTable<f32>::from_positions(pos3, inv, mrope::interleaved{{24, 20, 20}});
  const auto chunk = RopeTable<f32>::from_positions(pos3, inv, mrope::chunked{{16, 24, 24}});
  for (index_t t = 0; t < n_tok; ++t) {
    std::vector<double> freqs[3];
    for (int a = 0; a < 3; ++a)
      for (index_t k = 0; k < 128; ++k)
        freqs[a].push_back(static_cast<double>(pos3(a, t)) * static_cast<double>(inv.values()(k % 64)));
    std::vector<double> f_inter = freqs[0];
    for (const auto& [a, off, sec] : {std::tuple{1, 1, 20}, std::tuple{2, 2, 20}})
      for (int k = off; k < 3 * sec; k += 3) f_inter[static_cast<std::size_t>(k)] = freqs[a][static_cast<std::size_t>(k)];
    std::vector<double> f_chunk;
    const int sections[6] = {16, 24, 24, 16, 24, 24};
    for (int k = 0, start = 0; k < 6; start += sections[k], ++k)
      for (int j = start; j < start + sections[k]; ++j) f_chunk.push_back(freqs[k % 3][static_cast<std::size_t>(j)]);
    for (index_t i = 0; i < 64; ++i) {
      INFO("t = " << t << ", slot " << i);
      const auto ui = static_cast<std::size_t>(i);
      CHECK(inter.cos()(t, i) == static_cast<float>(std::cos(f_inter[ui])));
      CHECK(inter.sin()(t, i) == static_cast<float>(std::sin(f_inter[ui])));
      CHECK(chunk.cos()(t, i) == static_cast<float>(std::cos(f_chunk[ui])));
      CHECK(chunk.sin()(t, i) == static_cast<float>(std::sin(f_chunk[ui])));
      // The second (duplicated) half of HF's emb selects the same rows (our table stores one half).
      CHECK(f_chunk[ui + 64] == f_chunk[ui]);
    }
  }
}

TEST_CASE("MRoPE rejects sections that do not cover rotary_dim/2 and positions that are not [3, T]",
          "[blocks][rope][mrope]") {
  const auto inv = InvFreq::standard(1e6, 128);
  const Tensor<i64, 2> pos3({3, 4});
  const Tensor<i64, 2> pos2({2, 4});
  REQUIRE_THROWS_AS(RopeTable<f32>::from_positions(pos3, inv, mrope::interleaved{{24, 20, 16}}), config_error);
  REQUIRE_THROWS_AS(RopeTable<f32>::from_positions(pos3, inv, mrope::chunked{{16, 24, 32}}), config_error);
  REQUIRE_THROWS_AS(RopeTable<f32>::from_positions(pos2, inv, mrope::chunked{}), shape_error);
  CHECK(RopeTable<f32>::from_positions(pos3, InvFreq::standard(1e6, 80), mrope::interleaved{{16, 12, 12}}).rotary_dim() ==
        80);
}

// ---------------------------------------------------------------------------------------------
// CPU kernel
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("CPU apply_rope matches the reference and float64 rotation (both layouts, partial rotary)",
                   "[blocks][rope]", f32, bf16, f16) {
  using D = TestType;
  auto rng = make_rng(804);
  struct Shape {
    index_t heads, head_dim, rotary_dim;
  };
  // gpt-oss (64, full), Qwen3 (128), SmolLM2 (64 with 9 heads), partial rotary with rd/2 not a
  // multiple of any batch width (12 of 16, 50 of 80), and a 2-feature head.
  const Shape shapes[] = {{3, 64, 64}, {2, 128, 128}, {9, 64, 64}, {3, 16, 12}, {2, 80, 50}, {4, 2, 2}};
  for (const auto& s : shapes) {
    const index_t n_tok = uniform_index(rng, 1, 7);
    const auto x = random_tensor<D, 3>({n_tok, s.heads, s.head_dim}, rng);
    const auto pos = random_positions(n_tok, rng, 131072);
    for (const bool yarn : {false, true}) {
      const auto inv = yarn ? InvFreq::make(150000.0, s.rotary_dim,
                                            rope_scaling::yarn{.factor = 32, .bounds = yarn_bounds::exact})
                            : InvFreq::make(10000.0, s.rotary_dim, rope_scaling::none{});
      const auto table = RopeTable<f32>::from_positions(pos, inv);
      INFO("heads " << s.heads << ", head_dim " << s.head_dim << ", rotary_dim " << s.rotary_dim << ", T " << n_tok
                    << ", yarn " << yarn);
      const auto ref_h = apply_rope<rope_layout::half_split>(x, table);
      const auto cpu_h = bcpu::apply_rope<rope_layout::half_split>(x, table);
      const auto ref_i = apply_rope<rope_layout::interleaved>(x, table);
      const auto cpu_i = bcpu::apply_rope<rope_layout::interleaved>(x, table);
      const auto c1 = check_rotation<rope_layout::half_split>(ref_h, x, table);
      const auto c2 = check_rotation<rope_layout::half_split>(cpu_h, x, table);
      const auto c3 = check_rotation<rope_layout::interleaved>(ref_i, x, table);
      const auto c4 = check_rotation<rope_layout::interleaved>(cpu_i, x, table);
      INFO(c1.first << " | " << c2.first << " | " << c3.first << " | " << c4.first);
      CHECK(c1.ok());
      CHECK(c2.ok());
      CHECK(c3.ok());
      CHECK(c4.ok());
      // In place equals out of place, bit for bit.
      auto xi = x.clone();
      bcpu::apply_rope_inplace<rope_layout::interleaved>(xi, table);
      CHECK(same_bits(xi, cpu_i));
      auto xh = x.clone();
      bcpu::apply_rope_inplace(xh.view(), table);
      CHECK(same_bits(xh, cpu_h));
    }
  }
}

TEST_CASE("CPU apply_rope: pair norms are kept (× mscale under YaRN), threads and strides do not matter",
          "[blocks][rope]") {
  auto rng = make_rng(805);
  // 64 tokens × 64 heads × 64 rotated features = 2^18: the TBB path.
  const index_t n_tok = 64, n_heads = 64, dh = 64;
  const auto x = random_tensor<f32, 3>({n_tok, n_heads, dh}, rng);
  const auto pos = random_positions(n_tok, rng, 131072);
  const auto inv = InvFreq::make(150000.0, dh, rope_scaling::yarn{.factor = 32, .bounds = yarn_bounds::exact});
  const double ms = inv.attention_factor();
  const auto table = RopeTable<f32>::from_positions(pos, inv);
  const auto y = bcpu::apply_rope<rope_layout::interleaved>(x, table);
  double worst = 0.0;
  for (index_t t = 0; t < n_tok; t += 5)
    for (index_t h = 0; h < n_heads; h += 3)
      for (index_t i = 0; i < dh / 2; ++i) {
        const double n_in = std::hypot(static_cast<double>(x(t, h, 2 * i)), static_cast<double>(x(t, h, 2 * i + 1)));
        const double n_out = std::hypot(static_cast<double>(y(t, h, 2 * i)), static_cast<double>(y(t, h, 2 * i + 1)));
        worst = std::max(worst, std::fabs(n_out - ms * n_in) / (ms * n_in));
      }
  // cos² + sin² = 1 up to the f32 table rounding (2u), rotation error ≤ 2.01u per component
  // relative to |a·c| + |b·s| ≤ √2·|pair|: ≤ 8u relative in all.
  CHECK(worst <= 8 * unit_roundoff<f32>);
  // Each token's rotation computed alone (T = 1: calling thread) equals the threaded result.
  bool rows_equal = true;
  for (index_t t = 0; t < n_tok; t += 9) {
    const auto xt = x.cview().slice(0, t, t + 1);
    const auto pt = pos.cview().slice(0, t, t + 1);
    const auto one = bcpu::apply_rope<rope_layout::interleaved>(xt, RopeTable<f32>::from_positions(pt, inv));
    rows_equal = rows_equal && std::memcmp(one.data(), y.data() + t * n_heads * dh, one.bytes()) == 0;
  }
  CHECK(rows_equal);
  // q heads as a strided view of a fused qkv projection [T, H + 2·Hkv, Dh]: same bits as a copy,
  // and in place through the view leaves the k/v heads untouched.
  auto qkv = random_tensor<bf16, 3>({5, 12, 64}, rng);
  const auto t5 = RopeTable<f32>::from_positions(random_positions(5, rng, 4096), InvFreq::standard(150000.0, 64));
  const auto q_view = qkv.view().slice(1, 0, 8);
  const auto q_copy = materialize(q_view);
  const auto kv_before = materialize(qkv.cview().slice(1, 8, 12));
  const auto rotated_copy = bcpu::apply_rope(q_copy, t5);
  CHECK(same_bits(bcpu::apply_rope(q_view, t5), rotated_copy));
  bcpu::apply_rope_inplace(q_view, t5);
  CHECK(same_bits(materialize(qkv.cview().slice(1, 0, 8)), rotated_copy));
  CHECK(same_bits(materialize(qkv.cview().slice(1, 8, 12)), kv_before));
}

TEST_CASE("CPU apply_rope checks shapes; RoPE types keep their rules", "[blocks][rope][static]") {
  const Tensor<f32, 3> x({3, 2, 8});
  Tensor<i64, 1> pos2({2});
  REQUIRE_THROWS_AS(bcpu::apply_rope(x, RopeTable<f32>::from_positions(pos2, InvFreq::standard(1e4, 8))), shape_error);
  Tensor<i64, 1> pos3({3});
  REQUIRE_THROWS_AS(bcpu::apply_rope(x, RopeTable<f32>::from_positions(pos3, InvFreq::standard(1e4, 10))), shape_error);
  Tensor<f32, 3> big({3, 8, 2});
  const TensorView<const f32, 3> strided_last(big.data(), {3, 2, 8}, {16, 1, 2});  // head axis stride 2
  REQUIRE_THROWS_AS(bcpu::apply_rope(strided_last, RopeTable<f32>::from_positions(pos3, InvFreq::standard(1e4, 8))),
                    shape_error);
  // Same rules as the reference: activation inputs only, an f32 table, writable in-place targets.
  STATIC_REQUIRE(can_cpu_apply_rope<Tensor<bf16, 3>>);
  STATIC_REQUIRE(can_cpu_apply_rope<TensorView<const f16, 3>>);
  STATIC_REQUIRE_FALSE(can_cpu_apply_rope<Tensor<f64, 3>>);  // E15
  STATIC_REQUIRE_FALSE(can_cpu_apply_rope<Tensor<bf16, 2>>);
  STATIC_REQUIRE(can_cpu_apply_rope_inplace<Tensor<bf16, 3>&>);
  STATIC_REQUIRE(can_cpu_apply_rope_inplace<TensorView<bf16, 3>>);
  STATIC_REQUIRE_FALSE(can_cpu_apply_rope_inplace<const Tensor<bf16, 3>&>);
  STATIC_REQUIRE_FALSE(can_cpu_apply_rope_inplace<Tensor<bf16, 3>>);  // a temporary would vanish
  STATIC_REQUIRE_FALSE(can_cpu_apply_rope_inplace<TensorView<const bf16, 3>>);
  STATIC_REQUIRE_FALSE(can_cpu_apply_rope_inplace<Tensor<f64, 3>&>);
  // MRoPE positions are integer [3, T]; the slot map is a named layout.
  STATIC_REQUIRE(can_build_mrope_table<Tensor<i32, 2>, mrope::interleaved>);
  STATIC_REQUIRE(can_build_mrope_table<TensorView<const i64, 2>, mrope::chunked>);
  STATIC_REQUIRE_FALSE(can_build_mrope_table<Tensor<bf16, 2>, mrope::interleaved>);  // E13, E17
  STATIC_REQUIRE_FALSE(can_build_mrope_table<Tensor<i64, 1>, mrope::interleaved>);
  STATIC_REQUIRE_FALSE(can_build_mrope_table<Tensor<i64, 2>, rope_scaling::yarn>);
  // Scaling policies are types; nothing else makes an InvFreq.
  STATIC_REQUIRE(can_make_inv_freq_with<rope_scaling::llama3>);
  STATIC_REQUIRE(can_make_inv_freq_with<YarnScaling>);
  STATIC_REQUIRE_FALSE(can_make_inv_freq_with<double>);
  STATIC_REQUIRE_FALSE(can_make_inv_freq_with<mrope::chunked>);
}
