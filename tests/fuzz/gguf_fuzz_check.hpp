// tests/fuzz/gguf_fuzz_check.hpp — the property every input to GgufFile::parse must satisfy,
// shared by the libFuzzer target (fuzz_gguf.cpp) and the Catch2 corpus replay
// (tests/unit/gguf/test_gguf_fuzz_corpus_replay.cpp).
//
// An input is either rejected with precis::format_error, or accepted; nothing else (another
// exception type, a crash, a sanitizer report) is allowed. An accepted file must also keep the
// promises of io/gguf.hpp: alignment a power of two, the data section aligned and inside the
// input, every tensor info within GGML_MAX_DIMS with non-zero extents, a known ggml type whose
// block divides the innermost extent, nbytes matching the geometry, aligned offsets, data inside
// the input, no overlaps; every supported tensor handed out as an AnyTensor viewing exactly its
// bytes, readable through quant_view + dequantize for block formats; every unsupported one
// refused with format_error; every metadata value readable as its own kind. A violated invariant
// throws std::logic_error — an uncaught exception, hence a crash, under libFuzzer, and a test
// failure under Catch2.
#pragma once

#include <algorithm>  // std::sort
#include <cstddef>    // std::byte, std::size_t
#include <cstdint>    // std::uint64_t, std::uintptr_t
#include <optional>   // std::optional
#include <set>        // std::set
#include <span>       // std::span
#include <stdexcept>  // std::logic_error
#include <string>     // std::string
#include <vector>     // std::vector

#include <precis/core/dtype.hpp>        // dtype_code, element_bytes, q8_0, ...
#include <precis/core/error.hpp>        // precis::format_error
#include <precis/io/gguf.hpp>           // precis::io::GgufFile
#include <precis/quant/block_formats.hpp>  // visit_ggml_block_format
#include <precis/io/quant_load.hpp>     // precis::io::quant_view
#include <precis/quant/dequantize.hpp>  // precis::dequantize

namespace precis::test {

enum class gguf_outcome { accepted, rejected };

namespace detail {

inline void gguf_invariant(bool ok, const std::string& what) {
  if (!ok) throw std::logic_error("[gguf fuzz] invariant violated: " + what);
}

/// quant_view<F, R>(t) at the tensor's runtime rank, handed to `fn`.
template <class F, class Fn>
void with_quant_view(const io::AnyTensor& t, Fn&& fn) {
  switch (t.rank()) {
    case 1: fn(io::quant_view<F, 1>(t)); break;
    case 2: fn(io::quant_view<F, 2>(t)); break;
    case 3: fn(io::quant_view<F, 3>(t)); break;
    case 4: fn(io::quant_view<F, 4>(t)); break;
    default: gguf_invariant(false, "block tensor '" + t.name() + "' of rank " + std::to_string(t.rank()));
  }
}

/// A block tensor reads through quant_view + dequantize<f32>. A file with general.alignment 1 may
/// place blocks with f16 fields at odd addresses: quant_view refuses those with format_error
/// rather than read misaligned structs; any other refusal is a bug.
template <class F>
void dequantize_any_rank(const io::AnyTensor& t) {
  constexpr std::size_t align = alignof(typename dtype_traits<F>::block_type);
  if (reinterpret_cast<std::uintptr_t>(t.bytes().data()) % align != 0) {
    bool refused = false;
    try {
      with_quant_view<F>(t, [](const auto&) {});
    } catch (const format_error&) {
      refused = true;
    }
    gguf_invariant(refused, "misaligned block tensor '" + t.name() + "' was viewed");
    return;
  }
  with_quant_view<F>(t, [&](const auto& q) {
    const auto out = dequantize<f32>(q);
    gguf_invariant(out.numel() == t.numel(), "tensor '" + t.name() + "' dequantized element count");
  });
}

inline void check_value(const io::GgufValue& v) {
  using io::gguf_value_type;
  (void)v.describe();
  const auto natural_scalar = [](const io::GgufValue& s, gguf_value_type t) {
    switch (t) {
      case gguf_value_type::u8: case gguf_value_type::u16: case gguf_value_type::u32: case gguf_value_type::u64:
        (void)s.get<std::uint64_t>(); break;
      case gguf_value_type::i8: case gguf_value_type::i16: case gguf_value_type::i32: case gguf_value_type::i64:
        (void)s.get<std::int64_t>(); break;
      case gguf_value_type::f32: case gguf_value_type::f64: (void)s.get<double>(); break;
      case gguf_value_type::boolean: (void)s.get<bool>(); break;
      case gguf_value_type::string: (void)s.get<std::string>(); break;
      case gguf_value_type::array: break;
    }
  };
  if (!v.is_array()) {
    gguf_invariant(v.size() == 1, "scalar '" + v.key() + "' size");
    natural_scalar(v, v.type());
    return;
  }
  const gguf_value_type e = v.array_type();
  gguf_invariant(e != gguf_value_type::array, "nested array '" + v.key() + "' accepted");
  std::size_t n = 0;
  switch (e) {
    case gguf_value_type::u8: case gguf_value_type::u16: case gguf_value_type::u32: case gguf_value_type::u64:
      n = v.get_array<std::uint64_t>().size(); break;
    case gguf_value_type::i8: case gguf_value_type::i16: case gguf_value_type::i32: case gguf_value_type::i64:
      n = v.get_array<std::int64_t>().size(); break;
    case gguf_value_type::f32: case gguf_value_type::f64: n = v.get_array<double>().size(); break;
    case gguf_value_type::boolean: n = v.get_array<bool>().size(); break;
    case gguf_value_type::string:
      n = v.get_array<std::string>().size();
      for (std::size_t i = 0; i < n; ++i) (void)v.string_at(i);
      break;
    case gguf_value_type::array: break;
  }
  gguf_invariant(n == v.size(), "array '" + v.key() + "' length");
}

}  // namespace detail

/// Parses `bytes`; returns whether it was accepted; throws std::logic_error if an accepted file
/// breaks an invariant. Any exception other than format_error escapes unchanged.
inline gguf_outcome check_gguf_input(std::span<const std::byte> bytes) {
  using detail::gguf_invariant;
  std::optional<io::GgufFile> parsed;
  try {
    parsed.emplace(io::GgufFile::parse(bytes, "fuzz-input"));
  } catch (const format_error&) {
    return gguf_outcome::rejected;
  }
  const io::GgufFile& f = *parsed;

  // --- header and data section ---------------------------------------------------------------
  gguf_invariant(f.version() == 2 || f.version() == 3, "version");
  const std::uint64_t a = f.alignment();
  gguf_invariant(a != 0 && (a & (a - 1)) == 0, "alignment not a power of two");
  gguf_invariant(f.data_offset() % a == 0, "data offset not aligned");
  if (!f.data().empty())
    gguf_invariant(f.data().data() == bytes.data() + f.data_offset() &&
                       f.data_offset() + f.data().size() == bytes.size(),
                   "data section is not the input's tail from data_offset");

  // --- metadata ------------------------------------------------------------------------------
  const auto keys = f.keys();
  gguf_invariant(keys.size() == f.metadata().size(), "keys() and metadata() disagree");
  std::set<std::string> unique_keys(keys.begin(), keys.end());
  gguf_invariant(unique_keys.size() == keys.size(), "duplicate keys accepted");
  for (const auto& v : f.metadata()) {
    gguf_invariant(f.has(v.key()) && &f.at(v.key()) == &v, "lookup of key '" + v.key() + "'");
    detail::check_value(v);
  }
  if (f.has("general.alignment"))
    gguf_invariant(f.get<std::uint64_t>("general.alignment") == a, "general.alignment and alignment() disagree");
  try {
    (void)f.architecture();
  } catch (const format_error&) {
    // absent or not a string: reported, as it must be
  }

  // --- tensor infos --------------------------------------------------------------------------
  std::set<std::string> names;
  std::vector<const io::GgufFile::TensorInfo*> sorted;
  for (const auto& t : f.tensor_infos()) {
    const std::string tn = "tensor '" + t.name + "'";
    gguf_invariant(names.insert(t.name).second, "duplicate " + tn);
    gguf_invariant(t.name.size() <= 64, tn + " name length");
    gguf_invariant(t.shape.size() <= 4, tn + " rank");
    const io::GgmlTypeInfo* ti = io::ggml_type_info(t.ggml_type);
    gguf_invariant(ti != nullptr, tn + " unknown ggml type accepted");
    std::uint64_t numel = 1;
    for (index_t e : t.shape) {
      gguf_invariant(e > 0, tn + " non-positive extent");
      numel *= static_cast<std::uint64_t>(e);
    }
    const std::uint64_t inner = t.shape.empty() ? 1 : static_cast<std::uint64_t>(t.shape.back());
    gguf_invariant(inner % ti->block_size == 0, tn + " innermost extent not a block multiple");
    gguf_invariant(t.nbytes == numel / ti->block_size * ti->type_size, tn + " nbytes");
    gguf_invariant(t.offset % a == 0, tn + " offset not aligned");
    gguf_invariant(t.offset <= f.data().size() && t.nbytes <= f.data().size() - t.offset, tn + " outside the input");
    sorted.push_back(&t);

    // tensor(): supported types come out as exactly their bytes, the others are refused.
    if (const auto dt = io::ggml_type_dtype(t.ggml_type)) {
      const io::AnyTensor any = f.tensor(t.name);
      gguf_invariant(any.dtype() == *dt && any.shape() == t.shape, tn + " AnyTensor header");
      gguf_invariant(any.bytes().data() == f.data().data() + t.offset && any.bytes().size() == t.nbytes,
                     tn + " AnyTensor bytes");
      if (!visit_ggml_block_format(*dt, [&]<class F>() { detail::dequantize_any_rank<F>(any); }))
        gguf_invariant(any.bytes().size() == static_cast<std::size_t>(any.numel()) * element_bytes(*dt),
                       tn + " element byte count");
    } else {
      bool refused = false;
      try {
        (void)f.tensor(t.name);
      } catch (const format_error&) {
        refused = true;
      }
      gguf_invariant(refused, tn + " of an unsupported type was handed out");
    }
  }
  std::sort(sorted.begin(), sorted.end(), [](const auto* x, const auto* y) { return x->offset < y->offset; });
  for (std::size_t i = 1; i < sorted.size(); ++i)
    gguf_invariant(sorted[i - 1]->offset + sorted[i - 1]->nbytes <= sorted[i]->offset,
                   "tensors '" + sorted[i - 1]->name + "' and '" + sorted[i]->name + "' overlap");
  return gguf_outcome::accepted;
}

}  // namespace precis::test
