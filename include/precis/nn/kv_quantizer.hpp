// precis/nn/kv_quantizer.hpp — named KV quantizers: QuantizedKv<Store, Q> and PerHeadScale.
//
// Why: a KV cache whose storage type differs from the compute type is where seed bug 1 and
// the fp8-cache bugs live (dtype-bugs class C2): vLLM fed an fp8 cache, stored as uint8, straight
// into `tl.dot` with bf16 queries (E8), and `--kv-cache-dtype float16` on a bf16 model read bf16
// *bits* back as f16 (E9: "Paris,, therefore, proclaimedondunct"). In precis, K/V reach an fp8
// store only through a named quantizer, whose output is its own type:
//
//   QuantizedKv<f8_e4m3, PerHeadScale> qk = PerHeadScale::quantize<f8_e4m3>(k);   // k [T, Hkv, Dh]
//   cache.append(layer, qk, qv);        // KvCache<quantized_kv<f8_e4m3, PerHeadScale>>
//
// and leave it only through the same quantizer's `dequantize<Act>` (returns Tensor<Act, 3>).
// A QuantizedKv can be made by its quantizer only (private constructor), so codes without
// their scales cannot be passed off as quantized K/V.
//
// PerHeadScale: one f32 scale per (token, KV head): scale = amax(|x[t, h, :]|) / max_finite(Store)
// (1 for an all-zero vector), code = round_to_nearest_even(x / scale) in Store, and
// dequantized value = code · scale rounded once to the activation dtype. The relative error of a
// value near amax is at most half an fp8 ulp (2^-4 for e4m3).
#pragma once

#include <cmath>     // std::fabs
#include <concepts>  // std::same_as
#include <cstdint>   // std::uint8_t

#include <precis/core/dtype.hpp>       // precis::f8_e4m3, f8_e5m2, f32, ActivationDtype
#include <precis/core/error.hpp>       // precis::shape_error, PRECIS_CHECK
#include <precis/core/scalar.hpp>      // precis::to_compute, from_compute
#include <precis/core/tensor.hpp>      // precis::Tensor
#include <precis/numeric/float8.hpp>   // detail::e4m3fn_format, e5m2_format (largest finite codes)
#include <precis/ops/host_tensor.hpp>  // precis::HostTensorOfRank, format_extents

namespace precis {

/// The fp8 types a quantized KV store may use.
template <class S>
concept kv_fp8_store = std::same_as<S, f8_e4m3> || std::same_as<S, f8_e5m2>;

/// K or V for one append, in `Store` codes with f32 scales, produced by quantizer `Q`.
template <class Store, class Q>
class QuantizedKv {
 public:
  using store = Store;
  using quantizer = Q;

  [[nodiscard]] TensorView<const Store, 3> codes() const noexcept { return codes_.cview(); }  // [T, Hkv, Dh]
  [[nodiscard]] TensorView<const f32, 2> scales() const noexcept { return scales_.cview(); }  // [T, Hkv]
  [[nodiscard]] index_t n_tokens() const noexcept { return codes_.extent(0); }

 private:
  friend Q;
  QuantizedKv(Tensor<Store, 3> codes, Tensor<f32, 2> scales) : codes_(std::move(codes)), scales_(std::move(scales)) {}

  Tensor<Store, 3> codes_;  // [T, Hkv, Dh]
  Tensor<f32, 2> scales_;   // [T, Hkv]
};

template <class T>
inline constexpr bool is_quantized_kv_block = false;
template <class S, class Q>
inline constexpr bool is_quantized_kv_block<QuantizedKv<S, Q>> = true;

/// fp8 KV quantizer with one f32 scale per (token, KV head).
struct PerHeadScale {
  /// Largest finite value of an fp8 store (448 for e4m3, 57344 for e5m2).
  template <kv_fp8_store Store>
  [[nodiscard]] static constexpr float max_finite() noexcept {
    if constexpr (std::same_as<Store, f8_e4m3>)
      return static_cast<float>(float8_e4m3::from_bits(static_cast<std::uint8_t>(detail::e4m3fn_format::max_code)));
    else
      return static_cast<float>(float8_e5m2::from_bits(static_cast<std::uint8_t>(detail::e5m2_format::max_code)));
  }

  /// x [T, Hkv, Dh] of an activation dtype → fp8 codes [T, Hkv, Dh] and f32 scales [T, Hkv].
  template <kv_fp8_store Store, HostTensorOfRank<3> X>
    requires ActivationDtype<dtype_of<X>>
  [[nodiscard]] static QuantizedKv<Store, PerHeadScale> quantize(const X& x) {
    using D = dtype_of<X>;
    const const_view_t<X> in = x;
    const index_t n_tok = in.extent(0), n_heads = in.extent(1), head_dim = in.extent(2);
    Tensor<Store, 3> codes(in.extents());
    Tensor<f32, 2> scales({n_tok, n_heads});
    for (index_t t = 0; t < n_tok; ++t) {
      for (index_t h = 0; h < n_heads; ++h) {
        float amax = 0.0f;
        for (index_t d = 0; d < head_dim; ++d) {
          const float a = std::fabs(static_cast<float>(to_compute<D>(in(t, h, d))));
          amax = a > amax ? a : amax;
        }
        const float scale = amax > 0.0f ? amax / max_finite<Store>() : 1.0f;
        scales(t, h) = scale;
        for (index_t d = 0; d < head_dim; ++d)
          codes(t, h, d) = storage_t<Store>(static_cast<float>(to_compute<D>(in(t, h, d))) / scale);
      }
    }
    return QuantizedKv<Store, PerHeadScale>(std::move(codes), std::move(scales));
  }

  /// codes [T, Hkv, Dh] · scales [T, Hkv] → Tensor<Act, 3>, one rounding per value.
  template <ActivationDtype Act, kv_fp8_store Store>
  [[nodiscard]] static Tensor<Act, 3> dequantize(TensorView<const Store, 3> codes, TensorView<const f32, 2> scales) {
    PRECIS_CHECK(scales.extent(0) == codes.extent(0) && scales.extent(1) == codes.extent(1), shape_error,
                 "[PerHeadScale::dequantize] scales ", format_extents(scales.extents()), " do not match codes ",
                 format_extents(codes.extents()));
    Tensor<Act, 3> out(codes.extents());
    for (index_t t = 0; t < codes.extent(0); ++t)
      for (index_t h = 0; h < codes.extent(1); ++h)
        for (index_t d = 0; d < codes.extent(2); ++d)
          out(t, h, d) = from_compute<Act>(static_cast<float>(codes(t, h, d)) * scales(t, h));
    return out;
  }
};

/// A quantizer usable as `Q` in `quantized_kv<Store, Q>`: it dequantizes Store codes with f32
/// scales into any activation dtype.
template <class Q, class Store>
concept KvQuantizer = requires(TensorView<const Store, 3> codes, TensorView<const f32, 2> scales) {
  { Q::template dequantize<f32>(codes, scales) } -> std::same_as<Tensor<f32, 3>>;
};

}  // namespace precis
