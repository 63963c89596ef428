// precis/io/load_mxfp4.hpp — HF/OpenAI MXFP4 expert weights: `*_blocks` + `*_scales` U8 tensors
// loaded as a typed QuantView<mxfp4, Rank>, and the no-kernel fallback.
//
// On disk (model-semantics.md §1a): `<prefix>_blocks` U8 [..., K/32, 16] (two FP4 E2M1 values per
// byte, element 2j in the low nibble) and `<prefix>_scales` U8 [..., K/32] (E8M0, bias 127). The
// logical weight is [..., K]. Two U8 tensors carry no dtype that says "MXFP4": the `_blocks` /
// `_scales` naming convention and their shapes are the format, so both are checked here before
// the bytes are viewed as mxfp4.
//
// Seed bug 1 / dtype-bugs E24: with no MXFP4 kernel, transformers dequantized to a hard-coded
// bf16 that then met f32 tensors. Here the fallback is `dequantize_mxfp4_fallback<Policy>`,
// whose result type is `Tensor<Policy::activation, Rank>` — the same static type the kernel
// path produces — so a fallback cannot change the model's compute dtype; the dequantization is
// logged in the ConversionReport like every other load-time conversion.
#pragma once

#include <concepts>     // std::same_as
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint8_t
#include <initializer_list>  // std::initializer_list
#include <limits>       // std::numeric_limits
#include <memory>       // std::shared_ptr, std::make_shared
#include <span>         // std::span
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::move, std::pair

#include <precis/core/config.hpp>            // precis::index_t
#include <precis/core/dtype.hpp>             // mxfp4, dtype_code, ActivationDtype
#include <precis/core/error.hpp>             // dtype_error, shape_error
#include <precis/core/precision_policy.hpp>  // PrecisionPolicy
#include <precis/core/tensor.hpp>            // precis::Tensor
#include <precis/core/tensor_view.hpp>       // extents_t
#include <precis/io/any_tensor.hpp>          // AnyTensor, shape_string
#include <precis/io/checkpoint.hpp>          // Checkpoint
#include <precis/io/conversion.hpp>          // ConversionReport, ConversionRecord
#include <precis/quant/dequantize.hpp>       // precis::dequantize<To>(QuantView)
#include <precis/quant/quant_view.hpp>       // precis::QuantView<mxfp4, Rank>

namespace precis::io {

/// A QuantView<mxfp4, Rank> into a checkpoint, keeping the mapping alive.
template <std::size_t Rank>
class LoadedMxfp4 {
 public:
  LoadedMxfp4(QuantView<mxfp4, Rank> view, std::shared_ptr<const void> owner)
      : view_(view), owner_(std::move(owner)) {}
  [[nodiscard]] const QuantView<mxfp4, Rank>& view() const noexcept { return view_; }
  operator const QuantView<mxfp4, Rank>&() const noexcept { return view_; }  // NOLINT(google-explicit-constructor)
  [[nodiscard]] const extents_t<Rank>& extents() const noexcept { return view_.extents(); }

 private:
  QuantView<mxfp4, Rank> view_;
  std::shared_ptr<const void> owner_;
};

/// Views `blocks` [..., K/32, 16] and `scales` [..., K/32] (both U8) as one MXFP4 weight of
/// logical extents [..., K]. Rank is the logical rank (one less than the blocks tensor's).
template <std::size_t Rank>
  requires(Rank >= 1)
[[nodiscard]] LoadedMxfp4<Rank> load_mxfp4(const AnyTensor& blocks, const AnyTensor& scales) {
  for (const AnyTensor* t : {&blocks, &scales})
    if (t->dtype() != dtype_code::u8)
      fail<dtype_error>("[load_mxfp4] tensor '", t->name(), "' ('", t->source(), "'): stored dtype ", t->dtype_name(),
                        ", declared U8 (MXFP4 ", t == &blocks ? "blocks" : "scales",
                        " are raw bytes; no implicit conversion is done)");
  const auto& b = blocks.shape();
  const auto& s = scales.shape();
  if (b.size() != Rank + 1 || b[Rank] != 16)
    fail<shape_error>("[load_mxfp4] tensor '", blocks.name(), "': stored shape ", shape_string(b), ", expected rank ",
                      Rank + 1, " [..., K/32, 16]");
  bool scales_match = s.size() == Rank;
  for (std::size_t i = 0; scales_match && i < Rank; ++i) scales_match = s[i] == b[i];
  if (!scales_match)
    fail<shape_error>("[load_mxfp4] tensor '", scales.name(), "': stored shape ", shape_string(s), ", expected ",
                      shape_string(std::span<const index_t>(b.data(), Rank)), " to match '", blocks.name(), "'");
  extents_t<Rank> logical{};
  for (std::size_t i = 0; i + 1 < Rank; ++i) logical[i] = b[i];
  if (b[Rank - 1] > std::numeric_limits<index_t>::max() / 32)
    fail<shape_error>("[load_mxfp4] tensor '", blocks.name(), "': ", b[Rank - 1], " blocks per row overflow K");
  logical[Rank - 1] = b[Rank - 1] * 32;

  const auto* nibbles = reinterpret_cast<const std::uint8_t*>(blocks.bytes().data());
  const auto* e8m0 = reinterpret_cast<const std::uint8_t*>(scales.bytes().data());
  // Both tensors come from one checkpoint, but may sit in different shards: keep both alive.
  auto owners = std::make_shared<const std::pair<std::shared_ptr<const void>, std::shared_ptr<const void>>>(
      blocks.owner(), scales.owner());
  return LoadedMxfp4<Rank>(QuantView<mxfp4, Rank>(nibbles, e8m0, logical), std::move(owners));
}

/// `<prefix>_blocks` and `<prefix>_scales` from a checkpoint (prefix e.g.
/// "model.layers.0.mlp.experts.down_proj").
template <std::size_t Rank>
  requires(Rank >= 1)
[[nodiscard]] LoadedMxfp4<Rank> load_mxfp4(const Checkpoint& ckpt, std::string_view prefix) {
  const std::string p(prefix);
  return load_mxfp4<Rank>(ckpt.tensor(p + "_blocks"), ckpt.tensor(p + "_scales"));
}

/// The fallback may produce only what the model declared: the policy's activation type, and the
/// policy's weight role must be either mxfp4 (the kernel path produces activations too) or that
/// same activation type. A policy with, say, bf16 weights under f32 activations has no single
/// declared target, and does not compile.
template <class P>
concept mxfp4_fallback_target_is_declared =
    PrecisionPolicy<P> && (std::same_as<typename P::weight, mxfp4> || std::same_as<typename P::weight, typename P::activation>);

/// No MXFP4 kernel: dequantize to the policy's declared activation dtype (never a hard-coded
/// bf16, dtype-bugs E24) and record `dequant<mxfp4, To>` in `report`.
template <class P, std::size_t Rank>
  requires mxfp4_fallback_target_is_declared<P> && (Rank >= 1)
[[nodiscard]] Tensor<typename P::activation, Rank> dequantize_mxfp4_fallback(const Checkpoint& ckpt,
                                                                             std::string_view prefix,
                                                                             ConversionReport& report) {
  using To = typename P::activation;
  const LoadedMxfp4<Rank> q = load_mxfp4<Rank>(ckpt, prefix);
  Tensor<To, Rank> out = dequantize<To>(q.view());  // (..., K)
  const AnyTensor blocks = ckpt.tensor(std::string(prefix) + "_blocks");
  report.record({blocks.name(), blocks.source(), dtype_code::mxfp4, dtype_traits<To>::code,
                 "dequant<mxfp4, " + std::string(dtype_name<To>) + ">"});
  return out;
}

}  // namespace precis::io
