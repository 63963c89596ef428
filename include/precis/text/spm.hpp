// precis/text/spm.hpp — SentencePiece-style BPE (GGUF "llama" vocabularies: Llama-2, stories260K).
//
// The algorithm is llama.cpp's llm_tokenizer_spm_session (src/llama-vocab.cpp; originally
// ggerganov/llama.cpp 074bea2e), which reproduces SentencePiece's BPE encoder
// (bpe_model.cc, Model::SampleEncode without sampling):
//   1. the text (already with spaces as "▁", see Tokenizer) is split into UTF-8 characters;
//   2. every adjacent pair whose concatenation is a vocabulary token is a candidate, scored by
//      that token's score; the highest score is merged first, the leftmost among equal scores;
//      merged symbols form new candidates with their neighbours; repeat until none is left;
//   3. every final symbol that is a token is emitted; one that is not (a character missing from
//      the vocabulary) falls back to its UTF-8 bytes as <0xNN> tokens ("byte fallback"), or to
//      the unk token when the vocabulary has no byte tokens.
#pragma once

#include <array>          // std::array
#include <cstddef>        // std::size_t
#include <cstdint>        // std::int32_t, std::uint8_t
#include <cstdio>         // std::snprintf
#include <optional>       // std::optional
#include <queue>          // std::priority_queue
#include <string>         // std::string
#include <string_view>    // std::string_view
#include <unordered_map>  // std::unordered_map
#include <vector>         // std::vector

#include <precis/text/utf8.hpp>   // utf8_char_length
#include <precis/text/vocab.hpp>  // precis::text::Vocab, token_id

namespace precis::text {

/// "<0x0A>" — the SentencePiece byte-fallback piece for byte `b` (upper-case hex, as in
/// sentencepiece's ByteToPiece and llama.cpp's byte_to_token).
[[nodiscard]] inline std::string spm_byte_piece(std::uint8_t b) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "<0x%02X>", static_cast<unsigned>(b));
  return buf;
}

class SpmModel {
 public:
  SpmModel() = default;
  SpmModel(const Vocab& vocab, const std::unordered_map<std::string_view, token_id>& ids) : unk_(vocab.unk) {
    byte_ids_.fill(-1);
    for (unsigned b = 0; b < 256; ++b) {
      const auto it = ids.find(spm_byte_piece(static_cast<std::uint8_t>(b)));
      if (it != ids.end()) byte_ids_[b] = it->second;
    }
    scores_.resize(vocab.size());
    for (std::size_t i = 0; i < vocab.size(); ++i) scores_[i] = vocab.score_of(static_cast<token_id>(i));
  }

  /// Appends the ids of `text` (UTF-8 with spaces already escaped as "▁").
  void encode(std::string_view text, const std::unordered_map<std::string_view, token_id>& ids,
              std::vector<token_id>& out) const {
    if (text.empty()) return;
    struct Symbol {
      std::size_t begin, len;  // bytes of `text`; len 0 once merged away
      std::int32_t prev, next;
    };
    std::vector<Symbol> sym;
    for (std::size_t i = 0; i < text.size();) {
      const std::size_t n = utf8_char_length(text.substr(i));
      const auto k = static_cast<std::int32_t>(sym.size());
      sym.push_back({i, n, k - 1, k + 1});
      i += n;
    }
    sym.back().next = -1;

    struct Candidate {
      float score;
      std::int32_t left, right;
      std::size_t len;
      // llama.cpp llm_bigram_spm::comparator: higher score first, then the leftmost.
      bool operator<(const Candidate& o) const { return score < o.score || (score == o.score && left > o.left); }
    };
    std::priority_queue<Candidate> heap;
    const auto consider = [&](std::int32_t l, std::int32_t r) {
      if (l < 0 || r < 0) return;
      const Symbol& a = sym[static_cast<std::size_t>(l)];
      const Symbol& b = sym[static_cast<std::size_t>(r)];
      const std::string_view joined = text.substr(a.begin, a.len + b.len);
      const auto it = ids.find(joined);
      if (it == ids.end()) return;
      heap.push({scores_[static_cast<std::size_t>(it->second)], l, r, joined.size()});
    };
    for (std::int32_t i = 1; i < static_cast<std::int32_t>(sym.size()); ++i) consider(i - 1, i);
    while (!heap.empty()) {
      const Candidate c = heap.top();
      heap.pop();
      Symbol& left = sym[static_cast<std::size_t>(c.left)];
      Symbol& right = sym[static_cast<std::size_t>(c.right)];
      // Stale when either side was merged away or has grown since the candidate was made.
      if (left.len == 0 || right.len == 0 || left.len + right.len != c.len) continue;
      left.len += right.len;
      right.len = 0;
      left.next = right.next;
      if (right.next >= 0) sym[static_cast<std::size_t>(right.next)].prev = c.left;
      consider(left.prev, c.left);
      consider(c.left, left.next);
    }
    for (std::int32_t i = 0; i >= 0; i = sym[static_cast<std::size_t>(i)].next) {
      const Symbol& s = sym[static_cast<std::size_t>(i)];
      const std::string_view piece = text.substr(s.begin, s.len);
      if (const auto it = ids.find(piece); it != ids.end()) {
        out.push_back(it->second);
        continue;
      }
      // Only an unmerged single character can be missing: every merge result is a token.
      for (const char ch : piece) {
        const token_id b = byte_ids_[static_cast<std::uint8_t>(ch)];
        if (b >= 0) {
          out.push_back(b);
        } else if (unk_) {
          out.push_back(*unk_);
          break;  // one unk for the character, as SentencePiece without byte fallback
        }
      }
    }
  }

  /// The id of the <0xNN> token for byte `b`, or -1.
  [[nodiscard]] token_id byte_token(std::uint8_t b) const noexcept { return byte_ids_[b]; }

 private:
  std::array<token_id, 256> byte_ids_{};
  std::vector<float> scores_;
  std::optional<token_id> unk_;
};

}  // namespace precis::text
