// precis/text/bpe.hpp — byte-level BPE: the merge loop of GPT-2-family tokenizers.
//
// One pre-token piece (raw bytes) becomes token ids like this (HF tokenizers models/bpe/
// model.rs `merge_word` + word.rs `merge_all`; llama.cpp llm_tokenizer_bpe_session, which agrees):
//   1. every byte becomes the id of its byte-level character (byte_level.hpp). A byte whose
//      character is not in the vocabulary is DROPPED before merging, as HF does when the model
//      has no unk token (SmolLM2's vocabulary lacks 21 of the 256 byte characters, e.g. 0x04);
//   2. repeatedly, the adjacent pair whose merge has the lowest rank (its line in the merges
//      list) is merged, the leftmost one among equal ranks, until no adjacent pair has a merge.
// With `ignore_merges` (Llama-3, and tokenizer.json `"ignore_merges": true`), a piece that is
// itself a vocabulary token is emitted whole first.
//
// Merges are looked up by the ids of their two halves (one hash probe per candidate pair), and
// the loop is a heap of candidate pairs over a linked list of symbols with lazy invalidation —
// O(n log n) in the piece length, so a 100 kB run of spaces costs milliseconds, not minutes.
#pragma once

#include <array>          // std::array
#include <cstddef>        // std::size_t
#include <cstdint>        // std::uint64_t, std::int32_t
#include <functional>     // std::greater
#include <queue>          // std::priority_queue
#include <string>         // std::string
#include <string_view>    // std::string_view
#include <unordered_map>  // std::unordered_map
#include <vector>         // std::vector

#include <precis/core/error.hpp>       // precis::format_error, fail
#include <precis/text/byte_level.hpp>  // byte_level_char, byte_level_encode
#include <precis/text/vocab.hpp>       // precis::text::Vocab, token_id

namespace precis::text {

class BpeModel {
 public:
  BpeModel() = default;

  /// Builds the merge table. format_error (naming `source` and the merge's rank) for a merge line
  /// whose halves or whose result are not vocabulary tokens — HF tokenizers refuses such a file
  /// too (Error::MergeTokenOutOfVocabulary); a duplicate pair keeps its first (lowest) rank.
  BpeModel(const Vocab& vocab, const std::unordered_map<std::string_view, token_id>& ids, std::string_view source)
      : ignore_merges_(vocab.ignore_merges),
        unk_(vocab.bpe_unk_for_missing && vocab.unk ? *vocab.unk : -1),
        fuse_unk_(vocab.fuse_unk) {
    byte_ids_.fill(-1);
    for (unsigned b = 0; b < 256; ++b) {
      const auto it = ids.find(byte_level_char(static_cast<std::uint8_t>(b)));
      if (it != ids.end()) byte_ids_[b] = it->second;
    }
    merges_.reserve(vocab.merges.size());
    std::string joined;
    for (std::size_t rank = 0; rank < vocab.merges.size(); ++rank) {
      const auto& [a, b] = vocab.merges[rank];
      const auto ia = ids.find(a);
      const auto ib = ids.find(b);
      joined.assign(a).append(b);
      const auto ij = ids.find(joined);
      if (ia == ids.end() || ib == ids.end() || ij == ids.end())
        fail<format_error>("[tokenizer] ", source, ": merge ", rank, " '", a, " ", b, "' refers to a piece that is not in the vocabulary ('",
                           ia == ids.end() ? a : ib == ids.end() ? b : joined, "')");
      merges_.try_emplace(key(ia->second, ib->second), Merge{static_cast<std::int32_t>(rank), ij->second});
    }
  }

  /// Appends the ids of one piece of raw bytes. `ids` maps pieces to ids (for ignore_merges).
  void encode(std::string_view bytes, const std::unordered_map<std::string_view, token_id>& ids,
              std::vector<token_id>& out) const {
    if (bytes.empty()) return;
    if (ignore_merges_) {
      const std::string whole = byte_level_encode(bytes);
      if (const auto it = ids.find(whole); it != ids.end()) {
        out.push_back(it->second);
        return;
      }
    }
    // Symbols: a doubly linked list over a vector, `id` -1 once merged away.
    struct Symbol {
      token_id id;
      std::int32_t prev, next;
    };
    std::vector<Symbol> sym;
    sym.reserve(bytes.size());
    for (const char c : bytes) {
      token_id id = byte_ids_[static_cast<std::uint8_t>(c)];
      if (id < 0) {
        if (unk_ < 0) continue;  // not in the vocabulary and no unk: dropped (see the header comment)
        if (fuse_unk_ && !sym.empty() && sym.back().id == unk_) continue;
        id = unk_;
      }
      const auto n = static_cast<std::int32_t>(sym.size());
      sym.push_back({id, n - 1, n + 1});
    }
    if (sym.empty()) return;
    sym.back().next = -1;
    if (sym.size() > 1) {
      struct Candidate {
        std::int32_t rank, left;
        token_id left_id, right_id, merged;
        bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
      };
      std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
      const auto consider = [&](std::int32_t l) {
        if (l < 0) return;
        const std::int32_t r = sym[static_cast<std::size_t>(l)].next;
        if (r < 0) return;
        const token_id a = sym[static_cast<std::size_t>(l)].id, b = sym[static_cast<std::size_t>(r)].id;
        if (const auto it = merges_.find(key(a, b)); it != merges_.end())
          heap.push({it->second.rank, l, a, b, it->second.merged});
      };
      for (std::int32_t i = 0; i + 1 < static_cast<std::int32_t>(sym.size()); ++i) consider(i);
      while (!heap.empty()) {
        const Candidate c = heap.top();
        heap.pop();
        Symbol& left = sym[static_cast<std::size_t>(c.left)];
        // Stale when the left symbol was merged away or changed, or its neighbour changed.
        if (left.id != c.left_id || left.next < 0) continue;
        Symbol& right = sym[static_cast<std::size_t>(left.next)];
        if (right.id != c.right_id) continue;
        left.id = c.merged;
        right.id = -1;
        left.next = right.next;
        if (right.next >= 0) sym[static_cast<std::size_t>(right.next)].prev = c.left;
        consider(left.prev);
        consider(c.left);
      }
    }
    for (std::int32_t i = 0; i >= 0; i = sym[static_cast<std::size_t>(i)].next) out.push_back(sym[static_cast<std::size_t>(i)].id);
  }

  [[nodiscard]] std::size_t merge_count() const noexcept { return merges_.size(); }

 private:
  struct Merge {
    std::int32_t rank;
    token_id merged;
  };
  [[nodiscard]] static std::uint64_t key(token_id a, token_id b) noexcept {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
  }

  std::array<token_id, 256> byte_ids_{};
  std::unordered_map<std::uint64_t, Merge> merges_;
  bool ignore_merges_ = false;
  token_id unk_ = -1;
  bool fuse_unk_ = false;
};

}  // namespace precis::text
