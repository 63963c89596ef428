// tests/fuzz/safetensors_fuzz_check.hpp — the property every input to SafetensorsFile::parse
// must satisfy, shared by the libFuzzer target and the Catch2 corpus replay.
//
// An input is either rejected with precis::format_error, or accepted; nothing else (another
// exception type, a crash, a sanitizer report) is allowed. An accepted file must also be
// self-consistent: its tensors tile the data buffer in storage order, every tensor's bytes lie
// inside the input and match numel × element size, and writing the parsed tensors back with
// SafetensorsWriter and parsing that yields the same tensors and metadata (reader and writer
// agree on the format). A violated invariant throws std::logic_error — an uncaught exception,
// hence a crash, under libFuzzer, and a test failure under Catch2.
#pragma once

#include <algorithm>  // std::equal
#include <cstddef>    // std::byte, std::size_t
#include <cstdint>    // std::uint64_t
#include <optional>   // std::optional
#include <span>       // std::span
#include <stdexcept>  // std::logic_error
#include <string>     // std::string
#include <vector>     // std::vector

#include <precis/core/error.hpp>             // precis::format_error
#include <precis/io/safetensors.hpp>         // precis::io::SafetensorsFile
#include <precis/io/safetensors_writer.hpp>  // precis::io::SafetensorsWriter

namespace precis::test {

enum class parse_outcome { accepted, rejected };

namespace detail {
inline void require_invariant(bool ok, const std::string& what) {
  if (!ok) throw std::logic_error("[safetensors fuzz] invariant violated: " + what);
}
}  // namespace detail

/// Parses `bytes`; returns whether it was accepted; throws std::logic_error if an accepted file
/// breaks an invariant. Any exception other than format_error escapes unchanged.
inline parse_outcome check_safetensors_input(std::span<const std::byte> bytes) {
  using detail::require_invariant;
  std::optional<io::SafetensorsFile> parsed;
  try {
    parsed.emplace(io::SafetensorsFile::parse(bytes, "fuzz-input"));
  } catch (const format_error&) {
    return parse_outcome::rejected;
  }
  const io::SafetensorsFile& f = *parsed;

  // The data buffer is the input's tail; tensors tile it in storage order.
  require_invariant(8 + f.header_size() + f.data().size() == bytes.size(), "header + data != input size");
  require_invariant(f.data().data() == bytes.data() + 8 + f.header_size(), "data buffer not at 8 + N");
  std::uint64_t expected = 0;
  for (const auto& e : f.entries()) {
    require_invariant(e.begin == expected, "tensor '" + e.name + "' does not start where the previous one ended");
    expected = e.end;
  }
  require_invariant(expected == f.data().size(), "tensors do not cover the data buffer");

  // Every tensor view lies inside the input and has numel × element size bytes.
  const auto tensors = f.tensors();
  require_invariant(tensors.size() == f.size(), "tensors() and entries() disagree");
  for (const auto& t : tensors) {
    require_invariant(t.bytes().data() >= bytes.data() &&
                          t.bytes().data() + t.bytes().size() <= bytes.data() + bytes.size(),
                      "tensor '" + t.name() + "' bytes outside the input");
    require_invariant(t.bytes().size() == static_cast<std::size_t>(t.numel()) * element_bytes(t.dtype()),
                      "tensor '" + t.name() + "' byte size");
    require_invariant(f.find(t.name()) != nullptr, "lookup by name failed for '" + t.name() + "'");
  }

  // Writer round trip: the same tensors and metadata.
  io::SafetensorsWriter w;
  for (const auto& [k, v] : f.metadata()) w.set_metadata(k, v);
  for (const auto& t : tensors) w.add_raw(t.name(), t.dtype(), t.shape(), t.bytes());
  const std::vector<std::byte> again_bytes = w.serialize();
  const io::SafetensorsFile again = io::SafetensorsFile::parse(again_bytes, "fuzz-roundtrip");
  require_invariant(again.metadata() == f.metadata(), "metadata changed in a writer round trip");
  require_invariant(again.names() == f.names(), "tensor names changed in a writer round trip");
  for (const auto& t : tensors) {
    const auto u = again.tensor(t.name());
    require_invariant(u.dtype() == t.dtype() && u.shape() == t.shape(), "tensor '" + t.name() + "' header changed");
    require_invariant(std::equal(u.bytes().begin(), u.bytes().end(), t.bytes().begin(), t.bytes().end()),
                      "tensor '" + t.name() + "' bytes changed");
  }
  return parse_outcome::accepted;
}

}  // namespace precis::test
