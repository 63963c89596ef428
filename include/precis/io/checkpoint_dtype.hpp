// precis/io/checkpoint_dtype.hpp — the checkpoint's dtype vs config.json vs the compiled policy.
//
// Three sources name a checkpoint's dtype, and real bugs came from trusting the wrong one:
//   - config.json `torch_dtype` can be wrong: GPTQ checkpoints say "bfloat16" while their
//     tensors are float16 (vllm#2149, dtype-bugs E25);
//   - it can be missing or "auto", and loaders then substituted a default (f32 for a bf16 file,
//     or f16 for f32, dtype-bugs E30);
//   - the precision policy the model was compiled with is what the kernels will compute in, and
//     running a bf16-trained checkpoint in f16 overflows to NaN silently (E22).
// The tensor headers are what will actually be loaded, so they are the ground truth:
// `resolve_checkpoint_dtype` reads them (the dtype of the floating-point weight matrices) and
// reports a config.json that disagrees; `check_checkpoint_dtype<Policy>` then compares them with
// the policy and refuses a mismatch unless the caller lists a named conversion (io/conversion.hpp).
#pragma once

#include <concepts>     // std::same_as
#include <cstddef>      // std::size_t
#include <map>          // std::map
#include <optional>     // std::optional
#include <string>       // std::string
#include <type_traits>  // std::conditional_t
#include <vector>       // std::vector

#include <precis/core/dtype.hpp>             // dtype_code, ElementDtype, dtype_traits
#include <precis/core/error.hpp>             // config_error, dtype_error, format_error
#include <precis/core/precision_policy.hpp>  // PrecisionPolicy
#include <precis/io/checkpoint.hpp>          // Checkpoint, ConfigDtype
#include <precis/io/conversion.hpp>          // LoadConversion, conversion_name, detail::widens_exactly
#include <precis/io/load.hpp>                // conversions_target_declared_dtype
#include <precis/io/safetensors_dtype.hpp>   // stored_dtype_name

namespace precis::io {

/// How many floating-point weight matrices (rank ≥ 2) have one dtype.
struct StoredDtypeCount {
  dtype_code dtype;
  std::size_t count;
  std::string example;  // one tensor of that dtype
};

/// The checkpoint's dtype as resolved from its tensor headers, with what config.json says.
struct CheckpointDtype {
  dtype_code stored;                      // the dtype of (most of) the weight matrices
  std::string example;                    // one weight tensor stored that way
  std::vector<StoredDtypeCount> by_dtype;  // every floating dtype among the weight matrices
  ConfigDtype config;                     // config.json's claim (kind `missing` if none)
};

/// Resolves the checkpoint dtype from the headers: the most common dtype among floating-point
/// tensors of rank ≥ 2 (rank-1 norms, biases, sinks and RoPE tables are often kept in f32 on
/// purpose; U8 MXFP4 blocks are not floating point). config.json may be missing or "auto";
/// if it names a dtype, that dtype must be the headers' — a config_error otherwise (E25).
[[nodiscard]] inline CheckpointDtype resolve_checkpoint_dtype(const Checkpoint& ckpt) {
  CheckpointDtype r{dtype_code::f32, {}, {}, ckpt.config_dtype()};
  std::map<dtype_code, StoredDtypeCount> counts;
  for (const auto& f : ckpt.files())
    for (const auto& e : f.entries())
      if (e.shape.size() >= 2 && detail::is_float_code(e.dtype)) {
        auto [it, fresh] = counts.try_emplace(e.dtype, StoredDtypeCount{e.dtype, 0, e.name});
        ++it->second.count;
      }
  if (counts.empty())
    fail<format_error>("[checkpoint] '", ckpt.path().string(),
                       "' has no floating-point weight matrices (rank >= 2) to resolve its dtype from");
  for (const auto& [code, c] : counts) r.by_dtype.push_back(c);
  // f16 and bf16 matrices in one checkpoint: two 16-bit formats that read each other's bits as
  // garbage (E9) — a merge or conversion gone wrong, never a checkpoint to load silently.
  if (const auto f16 = counts.find(dtype_code::f16), b16 = counts.find(dtype_code::bf16);
      f16 != counts.end() && b16 != counts.end())
    fail<config_error>("[checkpoint] '", ckpt.path().string(), "' mixes F16 and BF16 weight matrices: ",
                       f16->second.count, " F16 (e.g. '", f16->second.example, "') and ", b16->second.count,
                       " BF16 (e.g. '", b16->second.example, "'); convert it to one dtype");
  const StoredDtypeCount* best = &r.by_dtype.front();
  for (const auto& c : r.by_dtype)
    if (c.count > best->count) best = &c;
  r.stored = best->dtype;
  r.example = best->example;

  if (r.config.kind == config_dtype_kind::explicit_ && *r.config.dtype != r.stored)
    fail<config_error>("[checkpoint] '", ckpt.path().string(), "': config.json ", r.config.describe(), " (",
                       to_string(*r.config.dtype), ") disagrees with the tensor headers, which store ", best->count,
                       " weight matrices as ", stored_dtype_name(r.stored), " (e.g. '", r.example,
                       "'); the headers are what would be loaded (dtype-bugs E25)");
  return r;
}

/// The dtype the policy declares for the checkpoint's floating-point weight matrices: the weight
/// type, or the activation type when weights are block-quantized (the unquantized projections —
/// attention, router, embeddings — are then stored in the activation type).
template <PrecisionPolicy P>
using checkpoint_weight_dtype_t =
    std::conditional_t<ElementDtype<typename P::weight>, typename P::weight, typename P::activation>;

/// The outcome of a successful check.
struct CheckpointDtypeCheck {
  CheckpointDtype checkpoint;
  dtype_code declared;                    // checkpoint_weight_dtype_t<Policy>
  std::optional<std::string> conversion;  // the listed conversion that reconciles them, if needed
};

/// Compares the checkpoint's resolved dtype with the compiled policy. Equal: fine. Different:
/// accepted only if a listed named conversion maps stored → declared (the model opts in; the
/// conversion then runs per tensor in load<D>), otherwise a dtype_error (E22, E30).
template <PrecisionPolicy P, LoadConversion... Cs>
  requires conversions_target_declared_dtype<checkpoint_weight_dtype_t<P>, Cs...>
[[nodiscard]] CheckpointDtypeCheck check_checkpoint_dtype(const Checkpoint& ckpt, Cs... /*conversions*/) {
  using Declared = checkpoint_weight_dtype_t<P>;
  constexpr dtype_code declared = dtype_traits<Declared>::code;
  CheckpointDtypeCheck r{resolve_checkpoint_dtype(ckpt), declared, std::nullopt};
  const dtype_code stored = r.checkpoint.stored;
  if (stored == declared) return r;
  ((stored == dtype_traits<typename Cs::from>::code && !r.conversion ? void(r.conversion = conversion_name<Cs>())
                                                                      : void()),
   ...);
  if (r.conversion) return r;

  std::string how;
  if (r.checkpoint.config.kind == config_dtype_kind::explicit_) how = "config.json agrees";
  else how = "config.json has " + r.checkpoint.config.describe() + ", resolved from the headers";
  std::string hint;
  if (detail::widens_exactly(stored, declared))
    hint = ", or opt in with widen<" + std::string(to_string(stored)) + ", " + std::string(dtype_name<Declared>) + ">";
  else if (detail::is_float_code(stored))
    hint = ", or opt in with narrow<" + std::string(to_string(stored)) + ", " + std::string(dtype_name<Declared>) +
           "> if the model supports it";
  fail<dtype_error>("[checkpoint] '", ckpt.path().string(), "': weights are stored as ", stored_dtype_name(stored),
                    " (e.g. '", r.checkpoint.example, "'; ", how, "), but the compiled precision policy declares ",
                    dtype_name<Declared>,
                    " (no silent substitution, dtype-bugs E22/E30: instantiate the model with a policy for ",
                    to_string(stored), hint, ")");
}

}  // namespace precis::io
