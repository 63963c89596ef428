// precis/text/stream_decoder.hpp — StreamDecoder: generated token ids in, printable text out.
//
// A generation loop prints each token as it arrives, but a token is bytes, not characters: an
// emoji such as U+1F999 (4 UTF-8 bytes) is typically 2–4 byte-level or <0xNN> tokens. Printing
// each token's bytes as they come would put broken UTF-8 on the terminal (and in any JSON the
// text goes into). StreamDecoder keeps the unfinished tail of a character back until the token
// that completes it arrives, and turns bytes that can never form a character into U+FFFD
// (utf8.hpp, Utf8Decoder) — so everything it returns is valid UTF-8, and the concatenation of
// all `push` results and `finish` is exactly `Tokenizer::decode` of the same ids, except that
// StreamDecoder never removes a SentencePiece leading space: it decodes a continuation, where
// "▁there" after "Once upon a time" must print " there".
#pragma once

#include <string>  // std::string

#include <precis/text/tokenizer.hpp>  // precis::text::Tokenizer, DecodeOptions, token_id
#include <precis/text/utf8.hpp>       // precis::text::Utf8Decoder

namespace precis::text {

class StreamDecoder {
 public:
  /// `tok` must outlive the decoder.
  explicit StreamDecoder(const Tokenizer& tok, DecodeOptions opt = {}) : tok_(&tok), opt_(opt) {}

  /// The text that token `id` completes (possibly empty); range_error if `id` is outside the
  /// vocabulary (the decoder's state is unchanged then).
  [[nodiscard]] std::string push(token_id id) {
    const std::string bytes = tok_->token_bytes(id, opt_);
    return utf8_.push(bytes);
  }

  /// Ends the stream: bytes of an unfinished character become one U+FFFD. The decoder can then
  /// start a new stream.
  [[nodiscard]] std::string finish() { return utf8_.finish(); }

  /// Bytes held back, waiting for the rest of a character.
  [[nodiscard]] std::size_t pending() const noexcept { return utf8_.pending(); }

 private:
  const Tokenizer* tok_;
  DecodeOptions opt_;
  Utf8Decoder utf8_;
};

}  // namespace precis::text
