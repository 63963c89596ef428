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

/// parse_number, then lo <= v <= hi (NaN fails), else usage_error quoting `range`.
template <class T>
[[nodiscard]] T parse_in(std::string_view flag, std::string_view s, T lo, T hi, std::string_view range) {
  const T v = parse_number<T>(flag, s);
  if (!(v >= lo && v <= hi))
    throw usage_error{std::string(flag) + " " + std::string(s) + " is out of range: expected " + std::string(range)};
  return v;
}

}  // namespace precis::generate
