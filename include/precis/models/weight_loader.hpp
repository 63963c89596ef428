// precis/models/weight_loader.hpp — WeightLoader<P, B>: the one way a model's `load` reads a
// tensor from a checkpoint, checks it, types it and puts it in backend memory.
//
//   WeightLoader<P, B> ld(backend, source);
//   auto q    = ld.weight("model.layers.0.self_attn.q_proj.weight", q_rows, hidden, why);  // [N, K]
//   auto gain = ld.param<role::norm_weight>("model.norm.weight", hidden, why);            // [hidden]
//   auto bias = ld.param_if<role::bias>(cfg.attention_bias, name, q_rows, why);           // optional
//
// Every read names the tensor and states the shape the config implies, with the config keys that
// imply it (`why`, e.g. "num_attention_heads=9 × head_dim=64"), so a wrong checkpoint fails with
// the tensor, both shapes and the reason (models/weight_source.hpp). Small tensors are typed by
// their role under policy P (models/model_loading.hpp load_role_tensor: pinned roles stay f32,
// every conversion is named and logged in report()). Weights keep their stored format, read in
// place from the file mapping where aligned; bytes_copied() counts the ones that had to be copied
// (ModelInfo::bytes_copied).
#pragma once

#include <cmath>     // std::isfinite
#include <cstddef>   // std::size_t
#include <optional>  // std::optional
#include <string>    // std::string
#include <utility>   // std::move

#include <precis/backends/backend.hpp>       // backends::weight_of, param_of
#include <precis/core/precision_policy.hpp>  // PrecisionPolicy, role_dtype_t
#include <precis/core/dtype.hpp>             // f32, bf16, f16
#include <precis/io/conversion.hpp>          // io::ConversionReport, widen
#include <precis/io/load.hpp>                // io::load, io::Loaded
#include <precis/models/model_loading.hpp>   // counted, load_role_tensor
#include <precis/models/weight_source.hpp>   // WeightSource, ExpectedShape
#include <precis/weights/any_experts.hpp>    // AnyExpertStack
#include <precis/weights/any_weight.hpp>     // AnyWeight

namespace precis::models {

template <PrecisionPolicy P, class B>
class WeightLoader {
 public:
  WeightLoader(B& backend, WeightSource& source) : be_(backend), w_(source) {}

  [[nodiscard]] B& backend() noexcept { return be_; }
  [[nodiscard]] WeightSource& source() noexcept { return w_; }
  /// Every dtype conversion the load performed so far.
  [[nodiscard]] io::ConversionReport& report() noexcept { return report_; }
  [[nodiscard]] io::ConversionReport take_report() noexcept { return std::move(report_); }
  /// Host bytes the load had to copy (misaligned tensors).
  [[nodiscard]] std::size_t bytes_copied() const noexcept { return copied_; }

  /// A projection / embedding matrix [rows, cols] in its stored format, on the host.
  [[nodiscard]] AnyWeight host_weight(const std::string& name, index_t rows, index_t cols, const std::string& why) {
    return counted(AnyWeight::from(w_.tensor(name, {{rows, cols}, why})), copied_);
  }
  /// The same, uploaded to the backend.
  [[nodiscard]] backends::weight_of<B> weight(const std::string& name, index_t rows, index_t cols,
                                              const std::string& why) {
    return be_.upload(host_weight(name, rows, cols, why));
  }

  /// A small tensor typed by `Role` under P, on the host ([n], or [rows, cols] for Rank 2).
  template <class Role, std::size_t Rank = 1>
  [[nodiscard]] io::Loaded<role_dtype_t<Role, P>, Rank> host_param(const std::string& name, const ExpectedShape& shape) {
    auto t = load_role_tensor<Role, P, Rank>(w_.tensor(name, shape), report_);
    check_finite(name, t.data(), t.numel());
    return t;
  }
  /// A vector [n] typed by `Role` under P, uploaded to the backend.
  template <class Role>
  [[nodiscard]] backends::param_of<B, role_dtype_t<Role, P>, 1> param(const std::string& name, index_t n,
                                                                      const std::string& why) {
    return be_.upload(host_param<Role>(name, {{n}, why}));
  }
  /// The same when the config says the tensor exists (`attention_bias`, `mlp_bias`), else nothing.
  template <class Role>
  [[nodiscard]] std::optional<backends::param_of<B, role_dtype_t<Role, P>, 1>> param_if(bool present,
                                                                                       const std::string& name,
                                                                                       index_t n,
                                                                                       const std::string& why) {
    if (!present) return std::nullopt;
    return param<Role>(name, n, why);
  }

  /// A vector [n] kept in f32 under every policy (gpt-oss's norms, HF `_keep_in_fp32_modules`): a
  /// bf16 or f16 tensor widens exactly, logged.
  [[nodiscard]] backends::param_of<B, f32, 1> f32_param(const std::string& name, index_t n, const std::string& why) {
    auto t = io::load<f32, 1>(w_.tensor(name, {{n}, why}), report_, io::widen<bf16, f32>{}, io::widen<f16, f32>{});
    check_finite(name, t.data(), t.numel());
    return be_.upload(std::move(t));
  }

  /// An expert stack read by a model's own expert loader, counted like a weight.
  [[nodiscard]] AnyExpertStack experts(AnyExpertStack s) { return counted(std::move(s), copied_); }

 private:
  /// Norm gains, biases, sinks: small, read whole here anyway, so a NaN/Inf in them is reported
  /// at load, naming the tensor and the element, instead of surfacing as a NaN logit (robustness
  /// sweep). Large matrices are not scanned (that would read every weight byte at load).
  template <class S>
  void check_finite(const std::string& name, const S* data, index_t n) const {
    for (index_t i = 0; i < n; ++i) {
      const float v = static_cast<float>(data[i]);
      if (!std::isfinite(v))
        fail<format_error>("[model] tensor '", name, "' ('", w_.path().string(), "') holds ", v, " at element ", i,
                           ": a weight of the model is not finite");
    }
  }

  B& be_;
  WeightSource& w_;
  io::ConversionReport report_;
  std::size_t copied_ = 0;
};

}  // namespace precis::models
