// precis/nn/rope.hpp — rotary position embedding: InvFreq and its scaling policies,
// RopeTable<f32> (1-D and MRoPE positions), apply_rope (the reference; the CPU kernel is
// backends/cpu/rope.hpp).
//
// RoPE precision is the second most frequent dtype bug class (dtype-bugs C3) and seed bug 2:
// Qwen3-Omni's `inv_freq` arrived as float64, cos/sin followed, and Q/K were promoted to f64
// ("Buffer dtype mismatch, expected 'const float' but got 'double'"). Other entries: tables
// autocast to bf16 (E11), `model.to(bf16)` rounding inv_freq (E12), bf16 positions (E13: 15962
// becomes 15936; bf16 spacing there is 64), fp16 rotation (E14), discarded f64 casts (E15). The rules:
//
//   InvFreq                  holds f32 only. Built from (base, rotary_dim, scaling policy) in double
//                            host math and narrowed once, or taken from a checkpoint tensor that must
//                            be f32 (inv_freq_is_f32): an f64 inv_freq needs an explicit cast<f32>.
//   RopeTable<T>             exists only for T = f32 (rope_table_is_f32): cos/sin [T, rotary_dim/2],
//                            built by `from_positions` from *integer* positions (i32/i64,
//                            rope_positions_are_integer) — [T] for 1-D RoPE, [3, T] (rows t, h, w)
//                            for MRoPE — angles and cos/sin in double, narrowed once.
//   apply_rope(x, table)     x [T, H, Dh] of an activation dtype D; rotates in f32 and returns D.
//
// Layouts (model-semantics §1a, §1d):
//   half_split  (NeoX / HF rotate_half; gpt-oss, Qwen3, HF Llama)   pairs (x[i], x[i + rd/2])
//                 o1 = x1·cos − x2·sin,  o2 = x2·cos + x1·sin                     [ccccssss]
//   interleaved (adjacent pairs: GGUF arch `llama`, "normal" RoPE)  pairs (x[2i], x[2i+1])
//                                                                               [cscscscs]
//   ("interleaved" names the *feature pairing*; interleaved MRoPE below is about which position
//   row drives a frequency slot, and uses half_split pairs.)
// Only the first `rotary_dim` features of a head rotate (partial rotary); the rest pass through.
//
// Scaling policies (HF `rope_scaling.rope_type`; HF modeling_rope_utils), named types in
// namespace rope_scaling, each an InvFreq factory (`InvFreq::make(base, rd, policy)`):
//   none     inv_freq[i] = base^(−2i/rd)                                       ("default")
//   linear   inv_freq / factor, i.e. positions / factor                        ("linear")
//   yarn     NTK-by-parts: a linear ramp between the correction dims blends interpolation
//            (inv/factor) and extrapolation (inv); cos AND sin are multiplied by the attention
//            factor mscale = 0.1·ln(factor) + 1, so q·k scales by mscale² — never applied again
//            to the softmax scale (model-semantics §1a, §1.7 item 5). `bounds` is HF's `truncate`:
//            yarn_bounds::rounded floors/ceils the correction range (HF default, vLLM, ggml),
//            yarn_bounds::exact keeps it real-valued (gpt-oss ships truncate = false).   ("yarn")
//   llama3   HF `_compute_llama3_parameters`: wavelengths shorter than L0/high_freq_factor keep
//            inv_freq, longer than L0/low_freq_factor get inv_freq/factor, in between a smooth
//            blend with s = (L0/wavelen − low)/(high − low).                          ("llama3")
//
// MRoPE (model-semantics §1c): positions [3, T] (rows t, h, w); frequency slot i (< rd/2) takes
// its angle from the row of axis(i), the rest is 1-D NeoX RoPE. The slot → axis maps are named
// types in namespace mrope:
//   mrope::chunked{{16, 24, 24}}       Qwen2-VL / Qwen2.5-VL (llama.cpp MROPE): T×16, H×24, W×24
//   mrope::interleaved{{24, 20, 20}}   Qwen3-VL / Qwen3-Omni thinker (llama.cpp IMROPE):
//                                      THW repeated 20 times, then TTTT (HF apply_interleaved_mrope)
// With t = h = w (pure text) MRoPE is 1-D RoPE to the last bit: both tables are built by the
// same arithmetic from the same integer position (§1.7 item 9; tested).
#pragma once

#include <array>        // std::array
#include <cmath>        // std::pow, std::log, std::floor, std::ceil, std::cos, std::sin
#include <concepts>     // std::same_as
#include <cstdint>      // std::int64_t
#include <numbers>      // std::numbers::pi
#include <string_view>  // std::string_view
#include <type_traits>  // std::remove_cv_t
#include <utility>      // std::move

#include <precis/core/dtype.hpp>       // precis::f32, ActivationDtype, IndexDtype
#include <precis/core/error.hpp>       // precis::config_error, shape_error, PRECIS_CHECK
#include <precis/core/scalar.hpp>      // precis::to_compute, from_compute
#include <precis/core/tensor.hpp>      // precis::Tensor
#include <precis/ops/host_tensor.hpp>  // precis::HostTensorOfRank, materialize, format_extents

namespace precis {

// ---------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------

/// The only RoPE table dtype is f32 (E11–E15, seed bug 2).
template <class T>
concept rope_table_is_f32 = std::same_as<T, f32>;

/// inv_freq is f32: an f64 (or bf16) inv_freq is narrowed or widened by an explicit cast.
template <class T>
concept inv_freq_is_f32 = std::same_as<std::remove_cv_t<T>, f32>;

/// Positions are integers (E13, E17): never bf16/f16/f32 values that merely look like integers.
template <class T>
concept rope_positions_are_integer = IndexDtype<T>;

/// RoPE rotates activations of the model's compute dtypes (f32/bf16/f16), never f64 (E15).
template <class T>
concept rope_input_is_activation = ActivationDtype<T>;

enum class rope_layout {
  half_split,   ///< NeoX / HF rotate_half: pairs (i, i + rotary_dim/2)
  interleaved,  ///< adjacent pairs (2i, 2i+1): GGUF `llama` "normal" RoPE
};

/// YaRN's correction range (HF `truncate`).
enum class yarn_bounds {
  rounded,  ///< HF `truncate: true` (the default; vLLM, ggml): low = floor(low), high = ceil(high)
  exact,    ///< HF `truncate: false` (gpt-oss): the real-valued bounds
};

/// RoPE scaling policies (HF `rope_scaling.rope_type`), one type each.
namespace rope_scaling {

/// No scaling (HF "default"): inv_freq[i] = base^(−2i/rotary_dim).
struct none {
  static constexpr std::string_view name = "default";
};

/// Position interpolation (HF "linear"): inv_freq / factor, i.e. positions / factor.
struct linear {
  static constexpr std::string_view name = "linear";
  double factor = 1.0;
};

/// YaRN "NTK-by-parts" (HF "yarn"; OpenAI gpt-oss `_compute_concentration_and_inv_freq`).
struct yarn {
  static constexpr std::string_view name = "yarn";
  double factor = 1.0;                        ///< context extension factor (gpt-oss: 32)
  double beta_fast = 32.0;                    ///< high-frequency correction bound (gpt-oss: 32)
  double beta_slow = 1.0;                     ///< low-frequency correction bound (gpt-oss: 1)
  double original_max_position = 4096;        ///< pre-extension context length L0 (gpt-oss: 4096)
  yarn_bounds bounds = yarn_bounds::rounded;  ///< HF `truncate` (default true; gpt-oss: exact)
};

/// Llama 3.1 frequency-dependent scaling (HF "llama3", `_compute_llama3_parameters`).
struct llama3 {
  static constexpr std::string_view name = "llama3";
  double factor = 8.0;                   ///< Llama 3.1: 8, Llama 3.2: 32
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  double original_max_position = 8192;   ///< `original_max_position_embeddings`
};

}  // namespace rope_scaling

/// The name the YaRN parameters had first; the same type.
using YarnScaling = rope_scaling::yarn;

/// One of the scaling policies InvFreq::make accepts.
template <class S>
concept RopeScalingPolicy = std::same_as<S, rope_scaling::none> || std::same_as<S, rope_scaling::linear> ||
                            std::same_as<S, rope_scaling::yarn> || std::same_as<S, rope_scaling::llama3>;

// ---------------------------------------------------------------------------------------------
// MRoPE slot maps
// ---------------------------------------------------------------------------------------------

namespace mrope {

/// The position row a frequency slot reads: temporal, height, width (rows 0, 1, 2 of [3, T]).
enum class axis : int { t = 0, h = 1, w = 2 };

/// Qwen2-VL / Qwen2.5-VL: contiguous chunks, T for slots [0, s0), H for [s0, s0+s1), W after
/// (HF `apply_multimodal_rotary_pos_emb`: `cos.split(mrope_section * 2)` picks m[i % 3]).
struct chunked {
  static constexpr std::string_view name = "chunked";
  std::array<index_t, 3> section{16, 24, 24};  ///< `mrope_section` (t, h, w)
  [[nodiscard]] constexpr axis axis_of(index_t slot) const noexcept {
    if (slot < section[0]) return axis::t;
    if (slot < section[0] + section[1]) return axis::h;
    return axis::w;
  }
};

/// Qwen3-VL / Qwen3-Omni: slot i is H if i ≡ 1 (mod 3) and i < 3·s1, W if i ≡ 2 (mod 3) and
/// i < 3·s2, T otherwise (HF `apply_interleaved_mrope`: freqs_t[..., offset:3·section[a]:3] =
/// freqs[a] for (a, offset) = (h, 1), (w, 2)).
struct interleaved {
  static constexpr std::string_view name = "interleaved";
  std::array<index_t, 3> section{24, 20, 20};  ///< `mrope_section` (t, h, w)
  [[nodiscard]] constexpr axis axis_of(index_t slot) const noexcept {
    if (slot % 3 == 1 && slot < 3 * section[1]) return axis::h;
    if (slot % 3 == 2 && slot < 3 * section[2]) return axis::w;
    return axis::t;
  }
};

}  // namespace mrope

/// One of the MRoPE slot maps.
template <class M>
concept MropeLayout = std::same_as<M, mrope::chunked> || std::same_as<M, mrope::interleaved>;

// ---------------------------------------------------------------------------------------------
// InvFreq
// ---------------------------------------------------------------------------------------------

/// The rotary inverse frequencies inv_freq[i], i < rotary_dim/2, in f32, plus the YaRN attention
/// factor that multiplies cos and sin (1 without YaRN).
class InvFreq {
 public:
  /// inv_freq[i] = base^(-2i/rotary_dim), computed in double and narrowed once.
  [[nodiscard]] static InvFreq standard(double base, index_t rotary_dim) {
    check_params("standard", base, rotary_dim);
    Tensor<f32, 1> t({rotary_dim / 2});
    for (index_t i = 0; i < rotary_dim / 2; ++i) t(i) = static_cast<float>(standard_value(base, rotary_dim, i));
    return InvFreq(std::move(t), 1.0f);
  }

  /// Linear scaling: standard inv_freq divided by `factor` (HF "linear"), in double.
  [[nodiscard]] static InvFreq linear(double base, index_t rotary_dim, const rope_scaling::linear& s) {
    check_params("linear", base, rotary_dim);
    PRECIS_CHECK(s.factor > 0.0, config_error, "[InvFreq::linear] factor must be > 0, got ", s.factor);
    Tensor<f32, 1> t({rotary_dim / 2});
    for (index_t i = 0; i < rotary_dim / 2; ++i) t(i) = static_cast<float>(standard_value(base, rotary_dim, i) / s.factor);
    return InvFreq(std::move(t), 1.0f);
  }

  /// YaRN inv_freq and attention factor (HF `_compute_yarn_parameters`; OpenAI gpt-oss
  /// `_compute_concentration_and_inv_freq`), in double, narrowed once. HF's optional `mscale`,
  /// `mscale_all_dim` and `attention_factor` overrides (DeepSeek) are not part of this policy.
  [[nodiscard]] static InvFreq yarn(double base, index_t rotary_dim, const rope_scaling::yarn& s) {
    check_params("yarn", base, rotary_dim);
    PRECIS_CHECK(s.factor >= 1.0 && s.original_max_position > 0 && s.beta_fast > s.beta_slow && s.beta_slow > 0,
                 config_error, "[InvFreq::yarn] invalid scaling: factor ", s.factor, ", beta_fast ", s.beta_fast,
                 ", beta_slow ", s.beta_slow, ", original_max_position ", s.original_max_position);
    const double d = static_cast<double>(rotary_dim);
    const auto corr_dim = [&](double rotations) {
      return d * std::log(s.original_max_position / (rotations * 2.0 * std::numbers::pi)) / (2.0 * std::log(base));
    };
    double low = corr_dim(s.beta_fast), high = corr_dim(s.beta_slow);
    if (s.bounds == yarn_bounds::rounded) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = low < 0.0 ? 0.0 : low;
    high = high > d - 1.0 ? d - 1.0 : high;
    if (low == high) high += 0.001;  // HF linear_ramp_factor: avoid a zero-width ramp
    Tensor<f32, 1> t({rotary_dim / 2});
    for (index_t i = 0; i < rotary_dim / 2; ++i) {
      const double pos_freq = std::pow(base, 2.0 * static_cast<double>(i) / d);
      const double extrapolation = 1.0 / pos_freq, interpolation = 1.0 / (s.factor * pos_freq);
      double ramp = (static_cast<double>(i) - low) / (high - low);
      ramp = ramp < 0.0 ? 0.0 : (ramp > 1.0 ? 1.0 : ramp);
      const double extrapolation_factor = 1.0 - ramp;
      t(i) = static_cast<float>(interpolation * (1.0 - extrapolation_factor) + extrapolation * extrapolation_factor);
    }
    const double mscale = s.factor > 1.0 ? 0.1 * std::log(s.factor) + 1.0 : 1.0;
    return InvFreq(std::move(t), static_cast<float>(mscale));
  }

  /// Llama 3.1 scaling, HF `_compute_llama3_parameters` step for step, in double:
  ///   wavelen = 2π / inv;  inv' = wavelen > L0/low ? inv/factor : inv
  ///   s = (L0/wavelen − low) / (high − low);  smoothed = (1 − s)·inv'/factor + s·inv'
  ///   medium = !(wavelen < L0/high) && !(wavelen > L0/low);  result = medium ? smoothed : inv'
  [[nodiscard]] static InvFreq llama3(double base, index_t rotary_dim, const rope_scaling::llama3& s) {
    check_params("llama3", base, rotary_dim);
    PRECIS_CHECK(s.factor > 0.0 && s.low_freq_factor > 0.0 && s.high_freq_factor > s.low_freq_factor &&
                     s.original_max_position > 0.0,
                 config_error, "[InvFreq::llama3] invalid scaling: factor ", s.factor, ", low_freq_factor ",
                 s.low_freq_factor, ", high_freq_factor ", s.high_freq_factor, ", original_max_position ",
                 s.original_max_position);
    const double low_freq_wavelen = s.original_max_position / s.low_freq_factor;
    const double high_freq_wavelen = s.original_max_position / s.high_freq_factor;
    Tensor<f32, 1> t({rotary_dim / 2});
    for (index_t i = 0; i < rotary_dim / 2; ++i) {
      const double inv = standard_value(base, rotary_dim, i);
      const double wavelen = 2.0 * std::numbers::pi / inv;
      const double inv_llama = wavelen > low_freq_wavelen ? inv / s.factor : inv;
      const double smooth = (s.original_max_position / wavelen - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      const double smoothed = (1.0 - smooth) * inv_llama / s.factor + smooth * inv_llama;
      const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
      t(i) = static_cast<float>(medium ? smoothed : inv_llama);
    }
    return InvFreq(std::move(t), 1.0f);
  }

  /// The factory of scaling policy S (generic model code: `InvFreq::make(theta, rd, cfg.scaling)`).
  [[nodiscard]] static InvFreq make(double base, index_t rotary_dim, const rope_scaling::none&) {
    return standard(base, rotary_dim);
  }
  [[nodiscard]] static InvFreq make(double base, index_t rotary_dim, const rope_scaling::linear& s) {
    return linear(base, rotary_dim, s);
  }
  [[nodiscard]] static InvFreq make(double base, index_t rotary_dim, const rope_scaling::yarn& s) {
    return yarn(base, rotary_dim, s);
  }
  [[nodiscard]] static InvFreq make(double base, index_t rotary_dim, const rope_scaling::llama3& s) {
    return llama3(base, rotary_dim, s);
  }

  /// An inv_freq tensor [rotary_dim/2] read from a checkpoint. It must already be f32: a
  /// float64 buffer (seed bug 2) is narrowed by the caller with an explicit `cast<f32>`.
  template <HostTensorOfRank<1> T>
    requires inv_freq_is_f32<dtype_of<T>>
  explicit InvFreq(const T& inv_freq, float attention_factor = 1.0f)
      : InvFreq(materialize(inv_freq), attention_factor) {}

  [[nodiscard]] TensorView<const f32, 1> values() const noexcept { return inv_freq_.cview(); }
  [[nodiscard]] index_t rotary_dim() const noexcept { return 2 * inv_freq_.extent(0); }
  [[nodiscard]] float attention_factor() const noexcept { return attention_factor_; }

 private:
  InvFreq(Tensor<f32, 1> t, float attention_factor) : inv_freq_(std::move(t)), attention_factor_(attention_factor) {
    PRECIS_CHECK(inv_freq_.extent(0) > 0, config_error, "[InvFreq] empty inv_freq");
  }

  /// base^(−2i/rotary_dim) in double (HF `_compute_default_rope_parameters`, before narrowing).
  [[nodiscard]] static double standard_value(double base, index_t rotary_dim, index_t i) {
    return std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(rotary_dim));
  }

  static void check_params(const char* what, double base, index_t rotary_dim) {
    PRECIS_CHECK(base > 1.0, config_error, "[InvFreq::", what, "] rope base must be > 1, got ", base);
    PRECIS_CHECK(rotary_dim > 0 && rotary_dim % 2 == 0, config_error, "[InvFreq::", what,
                 "] rotary_dim must be even and positive, got ", rotary_dim);
  }

  Tensor<f32, 1> inv_freq_;  // [rotary_dim/2]
  float attention_factor_;
};

// ---------------------------------------------------------------------------------------------
// RopeTable
// ---------------------------------------------------------------------------------------------

/// cos/sin for a run of token positions. Only RopeTable<f32> can be named.
template <class T>
  requires rope_table_is_f32<T>
class RopeTable {
 public:
  using dtype = T;

  /// cos/sin [n_positions, rotary_dim/2] for integer `positions` [n_positions]:
  /// angle = position · inv_freq[i] in double (the position is exact), then
  /// cos/sin · attention_factor narrowed to f32 once.
  template <HostTensorOfRank<1> P>
    requires rope_positions_are_integer<dtype_of<P>>
  [[nodiscard]] static RopeTable from_positions(const P& positions, const InvFreq& inv_freq) {
    const const_view_t<P> pos = positions;
    const TensorView<const f32, 1> inv = inv_freq.values();
    const index_t n = pos.extent(0), half = inv.extent(0);
    const double scale = static_cast<double>(inv_freq.attention_factor());
    RopeTable table(Tensor<T, 2>({n, half}), Tensor<T, 2>({n, half}));
    for (index_t t = 0; t < n; ++t)
      for (index_t i = 0; i < half; ++i) table.set(t, i, static_cast<std::int64_t>(pos(t)), inv(i), scale);
    return table;
  }

  /// MRoPE: cos/sin [T, rotary_dim/2] for integer 3-D positions [3, T] (rows t, h, w): slot i
  /// takes its position from row `layout.axis_of(i)`; the angle and rounding are those of the
  /// 1-D overload, so equal rows give the 1-D table bit for bit. The sections must cover the
  /// rotary_dim/2 frequency slots exactly (config_error otherwise).
  template <HostTensorOfRank<2> P, MropeLayout M>
    requires rope_positions_are_integer<dtype_of<P>>
  [[nodiscard]] static RopeTable from_positions(const P& positions, const InvFreq& inv_freq, const M& layout) {
    const const_view_t<P> pos = positions;
    const TensorView<const f32, 1> inv = inv_freq.values();
    const index_t half = inv.extent(0);
    PRECIS_CHECK(pos.extent(0) == 3, shape_error, "[RopeTable::from_positions<mrope::", M::name, ">] positions ",
                 format_extents(pos.extents()), " must be [3, T] (rows t, h, w)");
    const auto& sec = layout.section;
    PRECIS_CHECK(sec[0] >= 0 && sec[1] >= 0 && sec[2] >= 0 && sec[0] + sec[1] + sec[2] == half, config_error,
                 "[RopeTable::from_positions<mrope::", M::name, ">] mrope_section [", sec[0], ", ", sec[1], ", ",
                 sec[2], "] must sum to rotary_dim/2 = ", half);
    const index_t n = pos.extent(1);
    const double scale = static_cast<double>(inv_freq.attention_factor());
    RopeTable table(Tensor<T, 2>({n, half}), Tensor<T, 2>({n, half}));
    for (index_t t = 0; t < n; ++t)
      for (index_t i = 0; i < half; ++i) {
        const auto row = static_cast<index_t>(layout.axis_of(i));
        table.set(t, i, static_cast<std::int64_t>(pos(row, t)), inv(i), scale);
      }
    return table;
  }

  [[nodiscard]] TensorView<const T, 2> cos() const noexcept { return cos_.cview(); }  // [n_positions, rotary_dim/2]
  [[nodiscard]] TensorView<const T, 2> sin() const noexcept { return sin_.cview(); }  // [n_positions, rotary_dim/2]
  [[nodiscard]] index_t n_positions() const noexcept { return cos_.extent(0); }
  [[nodiscard]] index_t rotary_dim() const noexcept { return 2 * cos_.extent(1); }

 private:
  RopeTable(Tensor<T, 2> c, Tensor<T, 2> s) : cos_(std::move(c)), sin_(std::move(s)) {}

  /// Row t, slot i from an exact integer position: the one place angles are computed.
  void set(index_t t, index_t i, std::int64_t position, float inv_freq, double scale) {
    const double angle = static_cast<double>(position) * static_cast<double>(inv_freq);
    cos_(t, i) = static_cast<float>(std::cos(angle) * scale);
    sin_(t, i) = static_cast<float>(std::sin(angle) * scale);
  }

  Tensor<T, 2> cos_;  // [n_positions, rotary_dim/2]
  Tensor<T, 2> sin_;  // [n_positions, rotary_dim/2]
};

// ---------------------------------------------------------------------------------------------
// apply_rope
// ---------------------------------------------------------------------------------------------

/// Rotates x [T, H, Dh] by the table's row t for token t; computes in f32, returns x's dtype.
template <rope_layout Layout = rope_layout::half_split, HostTensorOfRank<3> X>
  requires rope_input_is_activation<dtype_of<X>>
[[nodiscard]] Tensor<dtype_of<X>, 3> apply_rope(const X& x, const RopeTable<f32>& table) {
  using D = dtype_of<X>;
  const const_view_t<X> in = x;
  const index_t n_tok = in.extent(0), n_heads = in.extent(1), head_dim = in.extent(2);
  const index_t rd = table.rotary_dim(), half = rd / 2;
  PRECIS_CHECK(table.n_positions() == n_tok, shape_error, "[apply_rope] x ", format_extents(in.extents()),
               " has ", n_tok, " tokens but the RoPE table has ", table.n_positions(), " positions");
  PRECIS_CHECK(rd <= head_dim, shape_error, "[apply_rope] rotary_dim ", rd, " exceeds head_dim ", head_dim);
  const TensorView<const f32, 2> cos = table.cos(), sin = table.sin();
  Tensor<D, 3> out(in.extents());  // [T, H, Dh]
  for (index_t t = 0; t < n_tok; ++t) {
    for (index_t h = 0; h < n_heads; ++h) {
      for (index_t i = 0; i < half; ++i) {
        const index_t a = Layout == rope_layout::half_split ? i : 2 * i;
        const index_t b = Layout == rope_layout::half_split ? i + half : 2 * i + 1;
        const float x1 = static_cast<float>(to_compute<D>(in(t, h, a)));
        const float x2 = static_cast<float>(to_compute<D>(in(t, h, b)));
        const float c = cos(t, i), s = sin(t, i);
        out(t, h, a) = from_compute<D>(x1 * c - x2 * s);
        out(t, h, b) = from_compute<D>(x2 * c + x1 * s);
      }
      for (index_t j = rd; j < head_dim; ++j) out(t, h, j) = in(t, h, j);  // pass-through features
    }
  }
  return out;
}

}  // namespace precis
