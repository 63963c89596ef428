// precis/generate/cli.hpp — flag values for command-line tools (precis-generate, precis-eval):
// a number that must parse completely and lie in a range, or a usage_error that says which flag,
// what it got and what it expects. The tools print the message and exit with status 2.
//
//   const int t = parse_in<int>("--threads", "0", 1, 4096, "1..4096");
//   // throws usage_error{"--threads 0 is out of range: expected 1..4096"}
#pragma once

#include <charconv>     // std::from_chars
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <system_error>  // std::errc
#include <type_traits>  // std::is_integral_v, std::is_unsigned_v
#include <utility>      // std::move

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

}  // namespace precis::generate
