// precis/generate/cli.hpp — flag values for command-line tools (precis-generate, precis-eval,
// precis-bench): a number that must parse completely and lie in a range, the model flags every
// tool shares (--precision, --act-quant, --cache-type-k/-v, --device), or a usage_error that says which flag, what it
// got and what it expects. The tools print the message and exit with status 2 (run_tool).
//
//   const int t = parse_in<int>("--threads", "0", 1, 4096, "1..4096");
//   // throws usage_error{"--threads 0 is out of range: expected 1..4096"}
#pragma once

#include <charconv>     // std::from_chars
#include <cstdio>       // std::fprintf
#include <exception>    // std::exception
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <system_error>  // std::errc
#include <type_traits>  // std::is_integral_v, std::is_unsigned_v
#include <utility>      // std::move

#include <precis/models/causal_lm.hpp>    // models::precision, parse_precision
#include <precis/nn/kv_format.hpp>        // KvFormat, parse_kv_format
#include <precis/weights/any_weight.hpp>  // activation_quantization

namespace precis::generate {

/// A command-line mistake: what was wrong (the tools exit with status 2).
struct usage_error {
  std::string what;
};

/// The whole of `s` as a T ("12", "0.5"; not "12x", "", or out of T's range), or usage_error
/// naming the flag.
template <class T>
[[nodiscard]] T parse_number(std::string_view flag, std::string_view s) {
  T v{};
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty())
    throw usage_error{std::string(flag) + " expects " +
                      (std::is_unsigned_v<T> ? "an integer >= 0" : std::is_integral_v<T> ? "an integer" : "a number") +
                      ", got '" + std::string(s) + "'"};
  return v;
}

/// parse_number, then lo <= v <= hi (NaN fails), else usage_error quoting `range`. For an
/// integer flag, a value too large for T ("-n 99999999999") or written as a decimal or in
/// exponent form ("-n 1e12") is reported against the range too (with its bounds), not as "expects
/// an integer".
template <class T>
[[nodiscard]] T parse_in(std::string_view flag, std::string_view s, T lo, T hi, std::string_view range) {
  const auto out_of_range = [&](std::string_view why) {
    std::string m = std::string(flag) + " " + std::string(s) + " " + std::string(why) + ": expected " + std::string(range);
    if constexpr (std::is_integral_v<T>) m += " (an integer from " + std::to_string(lo) + " to " + std::to_string(hi) + ")";
    return usage_error{std::move(m)};
  };
  if constexpr (std::is_integral_v<T>) {
    T v{};
    const char* end = s.data() + s.size();
    const auto [p, ec] = std::from_chars(s.data(), end, v);
    if (ec == std::errc::result_out_of_range && p == end) throw out_of_range("is out of range");
    if ((ec != std::errc() || p != end) && !s.empty()) {
      double d = 0;
      const auto [q, ec2] = std::from_chars(s.data(), end, d);
      if (ec2 == std::errc() && q == end) {
        if (d != d || d < static_cast<double>(lo) || d > static_cast<double>(hi)) throw out_of_range("is out of range");
        throw out_of_range("is not a whole number");
      }
    }
  }
  const T v = parse_number<T>(flag, s);
  if (!(v >= lo && v <= hi)) throw out_of_range("is out of range");
  return v;
}

/// `--precision`: f32 | bf16.
[[nodiscard]] inline models::precision parse_precision_flag(std::string_view v) {
  const auto p = models::parse_precision(v);
  if (!p) throw usage_error{"--precision must be f32 or bf16, got '" + std::string(v) + "'"};
  return *p;
}

/// `--act-quant`: none | q8 (activations rounded through 8-bit blocks, llama.cpp's arithmetic).
[[nodiscard]] inline activation_quantization parse_act_quant_flag(std::string_view v) {
  if (v == "none") return activation_quantization::none;
  if (v == "q8") return activation_quantization::q8_blocks;
  throw usage_error{"--act-quant must be none or q8, got '" + std::string(v) + "'"};
}

/// `--cache-type-k` / `--cache-type-v` (llama.cpp's -ctk / -ctv): f32 | f16 | bf16 | q8_0 | q4_0.
[[nodiscard]] inline KvFormat parse_cache_type_flag(std::string_view flag, std::string_view v) {
  if (const auto f = parse_kv_format(v)) return *f;
  throw usage_error{std::string(flag) + " must be f32, f16, bf16, q8_0 or q4_0, got '" + std::string(v) + "'"};
}

/// `--device`: cpu | cuda.
[[nodiscard]] inline std::string parse_device_flag(std::string_view v) {
  if (v != "cpu" && v != "cuda") throw usage_error{"--device must be cpu or cuda, got '" + std::string(v) + "'"};
  return std::string(v);
}

/// A tool's main(): `body()`'s status, or "<tool>: <what>" on stderr and status 2 for a
/// usage_error, 1 for any other error (the model or the request failed).
template <class Body>
[[nodiscard]] int run_tool(const char* tool, Body&& body) {
  try {
    return body();
  } catch (const usage_error& e) {
    std::fprintf(stderr, "%s: %s\n", tool, e.what.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", tool, e.what());
    return 1;
  }
}

}  // namespace precis::generate
