// precis-conform — runs a model over reference tokens and compares its logits with reference
// logits (e.g. produced by HF transformers in float32, tools/make_model_fixtures.py).
//
//   precis-conform --model DIR|FILE.gguf --reference FILE [--split N] [--precision f32|bf16]
//                  [--backend cpu|reference|cuda] [--threads N] [--info]
//
// --backend (alias --device) picks the backend the model's ops run on (runtime/load_model.hpp):
// the CPU kernels (default), the scalar reference ops, or the GPU (cuda: a build with precis::cuda
// and an NVIDIA GPU), so every fixture is checked on each with the same tolerances: the reference
// backend is the math spec, the CPU and CUDA backends its optimised twins.
//
// The reference file is safetensors with `tokens` I64 [S], `logits` F32 [S, vocab] and, for
// MRoPE models, `position_ids` I64 [3, S]. Without --split the S tokens run as one prefill; with
// --split N the first N tokens are prefilled and the remaining S − N are decoded one token at a
// time through the KV cache (so prefill and decode, and the cache between them, are all checked).
//
// Reported: the relative L2 error ‖ŷ − y‖₂ / ‖y‖₂ over all S × vocab logits, the top-1 agreement
// (argmax per position), the largest absolute error and where it is, and the position with the
// largest relative error. Tolerances (the acceptance criteria):
//   --precision f32    relative L2 ≤ 1e-4 and 100 % top-1 agreement (f32 accumulation everywhere;
//                      what remains is summation order and f32 RoPE tables, ~1e-6 in practice)
//   --precision bf16   relative L2 ≤ 3e-2 (bf16 activations round every hidden state to 8
//                      significant bits: u = 2^-8 ≈ 4e-3 per rounding, accumulated over layers)
// Exit status: 0 within tolerance, 1 tolerance exceeded, 2 usage or load error (message on stderr).
#include <algorithm>    // std::max
#include <charconv>     // std::from_chars
#include <cmath>        // std::sqrt, std::fabs
#include <cstdint>      // std::int64_t
#include <cstdio>       // std::printf, std::fprintf
#include <exception>    // std::exception
#include <optional>     // std::optional
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <vector>       // std::vector

#include <precis/core/error.hpp>         // precis::error
#include <precis/io/load.hpp>            // precis::io::load
#include <precis/io/safetensors.hpp>     // precis::io::SafetensorsFile
#include <precis/runtime/load_model.hpp>  // precis::models::load_model

namespace {

using namespace precis;
namespace pm = precis::models;

struct Args {
  std::string model, reference;
  std::optional<index_t> split;
  pm::precision precision = pm::precision::f32;
  pm::backend_kind backend = pm::backend_kind::cpu;
  int threads = 0;
  bool info = false;
};

constexpr const char* usage =
    "usage: precis-conform --model DIR|FILE.gguf --reference FILE [--split N] [--precision f32|bf16] "
    "[--backend cpu|reference|cuda] [--threads N] [--info]\n";

[[nodiscard]] std::optional<std::int64_t> parse_int(std::string_view s) {
  std::int64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

/// Parses argv; on error prints why and returns nullopt.
[[nodiscard]] std::optional<Args> parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string_view opt = argv[i];
    const auto value = [&]() -> std::optional<std::string_view> {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "precis-conform: %s needs a value\n", argv[i]);
        return std::nullopt;
      }
      return std::string_view(argv[++i]);
    };
    if (opt == "--info") {
      a.info = true;
    } else if (opt == "--model" || opt == "--reference" || opt == "--split" || opt == "--precision" ||
               opt == "--threads" || opt == "--backend" || opt == "--device") {
      const auto v = value();
      if (!v) return std::nullopt;
      if (opt == "--model") a.model = *v;
      else if (opt == "--reference") a.reference = *v;
      else if (opt == "--backend" || opt == "--device") {
        if (*v == "cpu") a.backend = pm::backend_kind::cpu;
        else if (*v == "reference") a.backend = pm::backend_kind::reference;
        else if (*v == "cuda") a.backend = pm::backend_kind::cuda;
        else {
          std::fprintf(stderr, "precis-conform: --backend must be cpu, reference or cuda, got '%.*s'\n",
                       static_cast<int>(v->size()), v->data());
          return std::nullopt;
        }
      } else if (opt == "--precision") {
        const auto p = pm::parse_precision(*v);
        if (!p) {
          std::fprintf(stderr, "precis-conform: --precision must be f32 or bf16, got '%.*s'\n", static_cast<int>(v->size()),
                       v->data());
          return std::nullopt;
        }
        a.precision = *p;
      } else {
        const auto n = parse_int(*v);
        if (!n || *n < 0) {
          std::fprintf(stderr, "precis-conform: %.*s must be a non-negative integer, got '%.*s'\n",
                       static_cast<int>(opt.size()), opt.data(), static_cast<int>(v->size()), v->data());
          return std::nullopt;
        }
        if (opt == "--split") a.split = *n;
        else a.threads = static_cast<int>(*n);
      }
    } else {
      std::fprintf(stderr, "precis-conform: unknown argument '%s'\n", argv[i]);
      return std::nullopt;
    }
  }
  if (a.model.empty() || a.reference.empty()) {
    std::fprintf(stderr, "precis-conform: --model and --reference are required\n");
    return std::nullopt;
  }
  return a;
}

/// The comparison of two [S, vocab] logit matrices.
struct Comparison {
  double rel_l2 = 0;
  index_t top1_agree = 0;
  double max_abs = 0;
  index_t max_abs_pos = 0, max_abs_token = 0;
  double worst_rel = 0;
  index_t worst_pos = 0;
};

[[nodiscard]] Comparison compare(TensorView<const f32, 2> got, TensorView<const f32, 2> want) {
  Comparison c;
  double num = 0, den = 0;
  for (index_t s = 0; s < want.extent(0); ++s) {
    double pn = 0, pd = 0;
    index_t am_got = 0, am_want = 0;
    for (index_t v = 0; v < want.extent(1); ++v) {
      const double g = got(s, v), w = want(s, v), d = g - w;
      pn += d * d;
      pd += w * w;
      if (std::fabs(d) > c.max_abs) {
        c.max_abs = std::fabs(d);
        c.max_abs_pos = s;
        c.max_abs_token = v;
      }
      if (got(s, v) > got(s, am_got)) am_got = v;
      if (want(s, v) > want(s, am_want)) am_want = v;
    }
    num += pn;
    den += pd;
    const double rel = pd > 0 ? std::sqrt(pn / pd) : std::sqrt(pn);
    if (rel > c.worst_rel) {
      c.worst_rel = rel;
      c.worst_pos = s;
    }
    c.top1_agree += am_got == am_want ? 1 : 0;
  }
  c.rel_l2 = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  return c;
}

/// Runs the model over the reference tokens (prefill, or prefill + per-token decode) → [S, vocab].
[[nodiscard]] Tensor<f32, 2> run(pm::CausalLM& lm, const std::vector<std::int64_t>& tokens,
                                 const std::optional<io::Loaded<i64, 2>>& positions, std::optional<index_t> split) {
  const auto s = static_cast<index_t>(tokens.size());
  const index_t vocab = lm.info().vocab_size;
  Tensor<f32, 2> out({s, vocab});  // [S, vocab]
  const pm::SequenceId seq = lm.new_sequence();
  const index_t n_prefill = split ? *split : s;
  const auto step = [&](index_t begin, index_t end) {
    const std::span<const std::int64_t> chunk(tokens.data() + begin, static_cast<std::size_t>(end - begin));
    Tensor<f32, 2> logits = positions ? lm.forward(seq, chunk, positions->view().slice(1, begin, end))
                                      : lm.forward(seq, chunk);  // [end − begin, vocab]
    for (index_t t = 0; t < end - begin; ++t)
      for (index_t v = 0; v < vocab; ++v) out(begin + t, v) = logits(t, v);
  };
  if (n_prefill > 0) step(0, n_prefill);
  for (index_t t = n_prefill; t < s; ++t) step(t, t + 1);
  lm.release(seq);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const std::optional<Args> args = parse_args(argc, argv);
  if (!args) {
    std::fputs(usage, stderr);
    return 2;
  }
  try {
    // --- the reference -------------------------------------------------------------------------
    const io::SafetensorsFile ref = io::SafetensorsFile::open(args->reference);
    if (!ref.contains("tokens") || !ref.contains("logits"))
      fail<format_error>("[precis-conform] '", args->reference, "' must hold 'tokens' I64 [S] and 'logits' F32 [S, vocab]");
    const io::Loaded<i64, 1> tok = io::load<i64, 1>(ref.tensor("tokens"));  // [S]
    const index_t s = tok.extent(0);
    const io::Loaded<f32, 2> want = io::load<f32, 2>(ref.tensor("logits"));  // [S, vocab]
    PRECIS_CHECK(want.extent(0) == s && s > 0, shape_error, "[precis-conform] '", args->reference, "': logits ",
                 format_extents(want.extents()), " for ", s, " tokens");
    std::optional<io::Loaded<i64, 2>> positions;
    if (ref.contains("position_ids")) positions = io::load<i64, 2>(ref.tensor("position_ids"), extents_t<2>{3, s});
    if (args->split)
      PRECIS_CHECK(*args->split <= s, config_error, "[precis-conform] --split ", *args->split, " exceeds the ", s,
                   " reference tokens");
    std::vector<std::int64_t> tokens(static_cast<std::size_t>(s));
    for (index_t i = 0; i < s; ++i) tokens[static_cast<std::size_t>(i)] = tok(i);

    // --- the model -----------------------------------------------------------------------------
    pm::LoadOptions opts;
    opts.max_context = s;  // the cache holds exactly the reference sequence
    opts.n_threads = args->threads;
    opts.backend = args->backend;
    const std::unique_ptr<pm::CausalLM> lm = pm::load_model(args->model, args->precision, opts);
    if (args->info) std::fputs(lm->info().describe().c_str(), stdout);
    PRECIS_CHECK(lm->info().vocab_size == want.extent(1), shape_error, "[precis-conform] the model's vocabulary has ",
                 lm->info().vocab_size, " tokens, the reference logits ", want.extent(1));

    const Tensor<f32, 2> got = run(*lm, tokens, positions, args->split);
    const Comparison c = compare(got.cview(), want.view());

    // --- verdict -------------------------------------------------------------------------------
    const bool f32_path = args->precision == pm::precision::f32;
    const double tol = f32_path ? 1e-4 : 3e-2;
    const bool top1_required = f32_path;
    const bool pass = c.rel_l2 <= tol && (!top1_required || c.top1_agree == s);
    std::printf("precis-conform: %s (%s '%s'), precision %s, backend %s, %lld tokens, %s\n",
                lm->info().architecture.c_str(), std::string(pm::to_string(lm->info().format)).c_str(),
                args->model.c_str(), std::string(pm::to_string(args->precision)).c_str(),
                std::string(pm::to_string(args->backend)).c_str(), static_cast<long long>(s),
                args->split ? ("prefill " + std::to_string(*args->split) + " + decode " + std::to_string(s - *args->split))
                                  .c_str()
                            : "one prefill");
    std::printf("  relative L2   %.3e   (tolerance %.0e)\n", c.rel_l2, tol);
    std::printf("  top-1         %lld/%lld (%.2f %%)%s\n", static_cast<long long>(c.top1_agree), static_cast<long long>(s),
                100.0 * static_cast<double>(c.top1_agree) / static_cast<double>(s),
                top1_required ? "   (required 100 %)" : "");
    std::printf("  max |error|   %.3e at position %lld, token %lld\n", c.max_abs, static_cast<long long>(c.max_abs_pos),
                static_cast<long long>(c.max_abs_token));
    std::printf("  worst row     position %lld, relative L2 %.3e\n", static_cast<long long>(c.worst_pos), c.worst_rel);
    std::printf("%s\n", pass ? "PASS" : "FAIL: tolerance exceeded");
    return pass ? 0 : 1;
  } catch (const precis::error& e) {
    std::fprintf(stderr, "precis-conform: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "precis-conform: unexpected error: %s\n", e.what());
    return 2;
  }
}
