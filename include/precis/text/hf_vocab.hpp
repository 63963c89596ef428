// precis/text/hf_vocab.hpp — Vocab from a Hugging Face tokenizer directory: tokenizer.json, and
// when present tokenizer_config.json, generation_config.json and chat_template.jinja.
//
// tokenizer.json is HF tokenizers' serialization (tokenizers/src/tokenizer/serialization.rs).
// precis reads the byte-level BPE subset every target model uses (SmolLM2, Qwen2/2.5/3 vocabs
// converted from GGUF, GPT-2, Llama-3, gpt-oss):
//   model          {"type": "BPE", "vocab": {piece: id}, "merges": ["a b" | ["a", "b"]],
//                   "ignore_merges", "unk_token", "fuse_unk"}; byte_fallback, dropout,
//                   continuing_subword_prefix and end_of_word_suffix are refused
//   added_tokens   [{id, content, special, lstrip, rstrip, single_word, normalized}]: special ones
//                   become control tokens, the others user-defined (always matched in text)
//   normalizer     null, NFC (Qwen2/3; nfc.hpp), or a Sequence of NFC; NFD, NFKC, Lowercase,
//                  Replace, Prepend, ... are refused
//   pre_tokenizer  ByteLevel{add_prefix_space, use_regex}, Split{pattern: {Regex|String},
//                   behavior, invert}, Digits{individual_digits}, Sequence[...] of these; a
//                   ByteLevel step is required (it is what makes the BPE byte-level)
//   post_processor TemplateProcessing (a leading / trailing SpecialToken in "single" means
//                   add BOS / EOS), ByteLevel, Sequence of those, or null
// Anything else is a config_error naming the file, the JSON path and what was found — a
// tokenizer precis would silently get wrong is worse than one it refuses.
// tokenizer_config.json gives bos_token / eos_token / unk_token (by content) and chat_template;
// generation_config.json's eos_token_id (one id or a list) adds end-of-generation ids.
#pragma once

#include <cstddef>      // std::size_t
#include <cstdint>      // std::int64_t
#include <filesystem>   // std::filesystem::path
#include <fstream>      // std::ifstream
#include <iterator>     // std::istreambuf_iterator
#include <optional>     // std::optional
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <unordered_map>  // std::unordered_map
#include <utility>      // std::move
#include <vector>       // std::vector

#include <nlohmann/json.hpp>  // nlohmann::json

#include <precis/core/error.hpp>         // precis::config_error, format_error, io_error, fail
#include <precis/io/json.hpp>            // precis::io::read_json_file (bounded)
#include <precis/text/pretokenizer.hpp>  // precis::text::SplitStep, pre_regex
#include <precis/text/vocab.hpp>         // precis::text::Vocab

namespace precis::text {

namespace detail {

/// tokenizer.json and its companions, bounded (io/json.hpp).
[[nodiscard]] inline nlohmann::json read_json_file(const std::filesystem::path& p) {
  return io::read_json_file(p, "tokenizer");
}

/// `s` as a PCRE2 pattern matching it literally (HF Split {"String": s}).
[[nodiscard]] inline std::string regex_quote(std::string_view s) {
  std::string out;
  for (const char c : s) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

class HfReader {
 public:
  explicit HfReader(std::string file) : file_(std::move(file)) {}

  template <class... Parts>
  [[noreturn]] void bad(std::string_view path, const Parts&... parts) const {
    fail<format_error>("[tokenizer] '", file_, "' at ", path, ": ", parts...);
  }
  template <class... Parts>
  [[noreturn]] void unsupported(std::string_view path, const Parts&... parts) const {
    fail<config_error>("[tokenizer] '", file_, "' at ", path, ": ", parts...);
  }

  [[nodiscard]] const nlohmann::json* member(const nlohmann::json& j, std::string_view key) const {
    if (!j.is_object()) return nullptr;
    const auto it = j.find(std::string(key));
    return it == j.end() || it->is_null() ? nullptr : &*it;
  }
  [[nodiscard]] bool flag(const nlohmann::json& j, std::string_view key, std::string_view path, bool dflt) const {
    const auto* v = member(j, key);
    if (v == nullptr) return dflt;
    if (!v->is_boolean()) bad(path, "'", key, "' must be true or false, found ", io::json_excerpt(*v));
    return v->get<bool>();
  }
  [[nodiscard]] std::string str(const nlohmann::json& j, std::string_view key, std::string_view path) const {
    const auto* v = member(j, key);
    if (v == nullptr || !v->is_string()) bad(path, "'", key, "' must be a string");
    return v->get<std::string>();
  }

  /// Appends the split steps of one pre_tokenizer node.
  void pre_tokenizer(const nlohmann::json& j, const std::string& path, Vocab& v, bool& byte_level) const {
    const std::string type = str(j, "type", path);
    if (type == "Sequence") {
      const auto* list = member(j, "pretokenizers");
      if (list == nullptr || !list->is_array()) bad(path, "a Sequence needs a 'pretokenizers' array");
      for (std::size_t i = 0; i < list->size(); ++i)
        pre_tokenizer((*list)[i], path + ".pretokenizers[" + std::to_string(i) + "]", v, byte_level);
    } else if (type == "ByteLevel") {
      if (byte_level) unsupported(path, "a second ByteLevel pre-tokenizer");
      byte_level = true;
      v.byte_level_add_prefix_space = flag(j, "add_prefix_space", path, false);
      // HF prepends the space to every piece the steps before produced; precis prepends it to
      // each stretch of text between special tokens, which is the same only when nothing came before.
      if (v.byte_level_add_prefix_space && !v.pre_steps.empty())
        unsupported(path, "ByteLevel add_prefix_space after other pre-tokenizer steps");
      if (flag(j, "use_regex", path, true)) v.pre_steps.push_back(SplitStep{std::string(pre_regex::gpt2)});
    } else if (type == "Split") {
      if (byte_level) unsupported(path, "a Split after the ByteLevel step (it would split byte-level characters)");
      const auto* pattern = member(j, "pattern");
      SplitStep s;
      if (pattern != nullptr && member(*pattern, "Regex") != nullptr && (*pattern)["Regex"].is_string())
        s.pattern = (*pattern)["Regex"].get<std::string>();
      else if (pattern != nullptr && member(*pattern, "String") != nullptr && (*pattern)["String"].is_string())
        s.pattern = regex_quote((*pattern)["String"].get<std::string>());
      else
        bad(path, "a Split needs 'pattern': {\"Regex\": ...} or {\"String\": ...}");
      const std::string behavior = str(j, "behavior", path);
      if (behavior == "Isolated") s.behavior = split_behavior::isolated;
      else if (behavior == "Removed") s.behavior = split_behavior::removed;
      else if (behavior == "MergedWithPrevious") s.behavior = split_behavior::merged_with_previous;
      else if (behavior == "MergedWithNext") s.behavior = split_behavior::merged_with_next;
      else if (behavior == "Contiguous") s.behavior = split_behavior::contiguous;
      else bad(path, "unknown Split behavior '", behavior, "'");
      s.invert = flag(j, "invert", path, false);
      v.pre_steps.push_back(std::move(s));
    } else if (type == "Digits") {
      if (byte_level) unsupported(path, "a Digits step after the ByteLevel step");
      // HF Digits: individual → each numeric character Isolated; otherwise runs of them.
      v.pre_steps.push_back(SplitStep{std::string(flag(j, "individual_digits", path, false) ? pre_regex::digit : pre_regex::digits)});
    } else {
      unsupported(path, "pre-tokenizer '", type,
                  "' is not supported (precis reads ByteLevel, Split, Digits and Sequence of them)");
    }
  }

  /// The steps' conventional name (the GGUF tokenizer.ggml.pre of the same pre-tokenizer).
  [[nodiscard]] static std::string pre_name(const Vocab& v) {
    const auto is = [&](std::initializer_list<std::string_view> pats) {
      if (v.pre_steps.size() != pats.size()) return false;
      std::size_t i = 0;
      for (const auto p : pats) {
        const SplitStep& s = v.pre_steps[i++];
        if (s.pattern != p || s.behavior != split_behavior::isolated || s.invert) return false;
      }
      return true;
    };
    if (v.byte_level_add_prefix_space) return "custom";
    if (is({pre_regex::gpt2})) return "gpt-2";
    if (is({pre_regex::digit, pre_regex::gpt2})) return "smollm";
    if (is({pre_regex::llama3})) return "llama3";
    if (is({pre_regex::qwen2})) return "qwen2";
    if (is({pre_regex::qwen35})) return "qwen35";
    if (is({pre_regex::o200k})) return "gpt-4o";
    return "custom";
  }

  std::string file_;
};

}  // namespace detail

[[nodiscard]] inline Vocab vocab_from_hf(const std::filesystem::path& dir) {
  const std::filesystem::path tj = dir / "tokenizer.json";
  if (!std::filesystem::exists(tj))
    fail<io_error>("[tokenizer] '", dir.string(), "': no tokenizer.json in the directory");  // else read_json_file says what it is
  const nlohmann::json root = detail::read_json_file(tj);
  const detail::HfReader r(tj.string());
  if (!root.is_object()) r.bad("$", "the top level must be an object");
  Vocab v;
  v.model = vocab_model::bpe;

  // --- model ------------------------------------------------------------------------------
  const auto* model = r.member(root, "model");
  if (model == nullptr || !model->is_object()) r.bad("$", "no 'model' object");
  const std::string mtype = r.member(*model, "type") ? r.str(*model, "type", "$.model") : "BPE";
  if (mtype != "BPE")
    r.unsupported("$.model.type", "model '", mtype, "' is not supported (precis implements BPE)");
  if (r.flag(*model, "byte_fallback", "$.model", false))
    r.unsupported("$.model.byte_fallback", "a SentencePiece-style BPE (byte_fallback: true) is not supported from "
                                           "tokenizer.json; load the model's GGUF (tokenizer.ggml.model 'llama')");
  if (const auto* d = r.member(*model, "dropout"); d != nullptr && !(d->is_number() && d->get<double>() == 0.0))
    r.unsupported("$.model.dropout", "BPE dropout ", io::json_excerpt(*d), " (a training-time option) is not supported");
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (const auto* s = r.member(*model, k); s != nullptr && !(s->is_string() && s->get<std::string>().empty()))
      r.unsupported(std::string("$.model.") + k, "'", k, "' = ", io::json_excerpt(*s), " is not supported");
  v.ignore_merges = r.flag(*model, "ignore_merges", "$.model", false);
  v.fuse_unk = r.flag(*model, "fuse_unk", "$.model", false);

  const auto* vocab = r.member(*model, "vocab");
  if (vocab == nullptr || !vocab->is_object()) r.bad("$.model.vocab", "must be an object {piece: id}");
  std::vector<std::optional<std::string>> slots;
  // Ids are dense (checked below), so none can reach the number of entries: bounding them here
  // keeps a hostile id (2^31 - 2) from sizing `slots` (robustness sweep: ~40 bytes per id).
  const auto* added_list = r.member(root, "added_tokens");
  const std::size_t n_entries = vocab->size() + (added_list != nullptr && added_list->is_array() ? added_list->size() : 0);
  const auto assign = [&](std::int64_t id, const std::string& piece, std::string_view path) {
    if (id < 0 || id > 0x7FFFFFFE) r.bad(path, "token id ", id, " of '", piece, "' is outside [0, 2^31 - 1)");
    if (static_cast<std::uint64_t>(id) >= n_entries)
      r.bad(path, "token id ", id, " of '", piece, "' is not below the number of tokens listed (", n_entries,
            "): ids must be 0..", n_entries - 1, " without gaps");
    const auto i = static_cast<std::size_t>(id);
    if (i >= slots.size()) slots.resize(i + 1);
    if (slots[i] && *slots[i] != piece)
      r.bad(path, "token id ", id, " is both '", *slots[i], "' and '", piece, "'");
    slots[i] = piece;
  };
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    if (!it.value().is_number_integer()) r.bad("$.model.vocab", "the id of '", it.key(), "' is not an integer");
    assign(it.value().get<std::int64_t>(), it.key(), "$.model.vocab");
  }

  const auto* merges = r.member(*model, "merges");
  if (merges == nullptr || !merges->is_array()) r.bad("$.model.merges", "must be an array");
  v.merges.reserve(merges->size());
  for (std::size_t i = 0; i < merges->size(); ++i) {
    const auto& m = (*merges)[i];
    const std::string path = "$.model.merges[" + std::to_string(i) + "]";
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const std::size_t sp = s.size() > 1 ? s.find(' ', 1) : std::string::npos;
      if (sp == std::string::npos || sp + 1 >= s.size()) r.bad(path, "'", s, "' is not two pieces separated by a space");
      v.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      v.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      r.bad(path, "a merge must be \"a b\" or [\"a\", \"b\"], found ", io::json_excerpt(m));
    }
  }

  // --- added tokens -------------------------------------------------------------------------
  std::unordered_map<std::size_t, token_type> added_type;
  if (const auto* added = r.member(root, "added_tokens")) {
    if (!added->is_array()) r.bad("$.added_tokens", "must be an array");
    for (std::size_t i = 0; i < added->size(); ++i) {
      const auto& a = (*added)[i];
      const std::string path = "$.added_tokens[" + std::to_string(i) + "]";
      const auto* id = r.member(a, "id");
      if (id == nullptr || !id->is_number_integer()) r.bad(path, "no integer 'id'");
      const std::string content = r.str(a, "content", path);
      if (content.empty()) r.bad(path, "empty 'content'");
      if (r.flag(a, "single_word", path, false))
        r.unsupported(path, "added token '", content, "' has single_word: true, which precis does not implement");
      assign(id->get<std::int64_t>(), content, path);
      const auto tid = static_cast<token_id>(id->get<std::int64_t>());
      added_type[static_cast<std::size_t>(tid)] = r.flag(a, "special", path, false) ? token_type::control : token_type::user_defined;
      if (r.flag(a, "lstrip", path, false)) v.lstrip.push_back(tid);
      if (r.flag(a, "rstrip", path, false)) v.rstrip.push_back(tid);
    }
  }
  v.tokens.reserve(slots.size());
  for (std::size_t i = 0; i < slots.size(); ++i) {
    if (!slots[i]) r.bad("$.model.vocab", "no token has id ", i, " (ids must be 0..", slots.size() - 1, " without gaps)");
    v.tokens.push_back(std::move(*slots[i]));
  }
  if (!added_type.empty()) {
    v.types.assign(v.tokens.size(), token_type::normal);
    for (const auto& [i, t] : added_type) v.types[i] = t;
  }
  if (const auto* unk = r.member(*model, "unk_token")) {
    if (!unk->is_string()) r.bad("$.model.unk_token", "must be a string or null");
    bool found = false;
    for (std::size_t i = 0; i < v.tokens.size() && !found; ++i)
      if (v.tokens[i] == unk->get<std::string>()) {
        v.unk = static_cast<token_id>(i);
        found = true;
      }
    if (!found) r.bad("$.model.unk_token", "'", unk->get<std::string>(), "' is not in the vocabulary");
    v.bpe_unk_for_missing = true;
  }

  // --- normalizer / pre-tokenizer / post-processor ------------------------------------------
  if (const auto* n = r.member(root, "normalizer")) {
    // null, NFC, or a Sequence of those (empty included).
    std::vector<const nlohmann::json*> list{n};
    if (r.member(*n, "type") && (*n)["type"] == "Sequence") {
      const auto* items = r.member(*n, "normalizers");
      if (items == nullptr || !items->is_array()) r.bad("$.normalizer", "a Sequence needs a 'normalizers' array");
      list.clear();
      for (const auto& item : *items) list.push_back(&item);
    }
    for (const auto* item : list) {
      if (r.member(*item, "type") && (*item)["type"] == "NFC") {
        v.normalize_nfc = true;
        continue;
      }
      r.unsupported("$.normalizer", "normalizer ", io::json_excerpt(*item, 200),
                    " is not supported (precis implements NFC only)");
    }
  }
  bool byte_level = false;
  if (const auto* p = r.member(root, "pre_tokenizer")) r.pre_tokenizer(*p, "$.pre_tokenizer", v, byte_level);
  if (!byte_level)
    r.unsupported("$.pre_tokenizer", "no ByteLevel pre-tokenizer: precis reads byte-level BPE tokenizer.json files only");
  v.pre = detail::HfReader::pre_name(v);

  const auto id_of = [&](const std::string& piece, std::string_view path) -> token_id {
    for (std::size_t i = 0; i < v.tokens.size(); ++i)
      if (v.tokens[i] == piece) return static_cast<token_id>(i);
    r.bad(path, "'", piece, "' is not in the vocabulary");
  };
  std::optional<token_id> template_bos, template_eos;
  const auto post = [&](const nlohmann::json& j, const std::string& path, auto& self) -> void {
    const std::string type = r.str(j, "type", path);
    if (type == "ByteLevel") return;
    if (type == "Sequence") {
      const auto* list = r.member(j, "processors");
      if (list == nullptr || !list->is_array()) r.bad(path, "a Sequence needs a 'processors' array");
      for (std::size_t i = 0; i < list->size(); ++i) self((*list)[i], path + ".processors[" + std::to_string(i) + "]", self);
      return;
    }
    if (type != "TemplateProcessing")
      r.unsupported(path, "post-processor '", type, "' is not supported (TemplateProcessing, ByteLevel, Sequence)");
    const auto* single = r.member(j, "single");
    if (single == nullptr || !single->is_array()) r.bad(path, "TemplateProcessing needs a 'single' array");
    std::size_t seq_at = single->size();
    for (std::size_t i = 0; i < single->size(); ++i)
      if (r.member((*single)[i], "Sequence")) seq_at = i;
    for (std::size_t i = 0; i < single->size(); ++i) {
      const auto* st = r.member((*single)[i], "SpecialToken");
      if (st == nullptr) continue;
      const std::string item = path + ".single[" + std::to_string(i) + "]";
      const token_id id = id_of(r.str(*st, "id", item), item);
      if (i < seq_at && !template_bos) template_bos = id;
      else if (i > seq_at) template_eos = id;
      else r.unsupported(item, "more than one special token before the sequence");
    }
  };
  if (const auto* p = r.member(root, "post_processor")) post(*p, "$.post_processor", post);
  if (template_bos) {
    v.bos = template_bos;
    v.add_bos = true;
  }
  if (template_eos) {
    v.eos = template_eos;
    v.add_eos = true;
  }

  // --- tokenizer_config.json, generation_config.json, chat_template.jinja --------------------
  const auto content_of = [](const nlohmann::json& t) -> std::optional<std::string> {
    if (t.is_string()) return t.get<std::string>();
    if (t.is_object() && t.contains("content") && t["content"].is_string()) return t["content"].get<std::string>();
    return std::nullopt;
  };
  if (const auto cfg_path = dir / "tokenizer_config.json"; std::filesystem::is_regular_file(cfg_path)) {
    const nlohmann::json cfg = detail::read_json_file(cfg_path);
    const detail::HfReader rc(cfg_path.string());
    const auto special = [&](std::string_view key, std::optional<token_id>& slot) {
      const auto* t = rc.member(cfg, key);
      if (t == nullptr) return;
      const auto content = content_of(*t);
      if (!content) rc.bad(std::string("$.") + std::string(key), "must be a string or {\"content\": ...}");
      slot = id_of(*content, std::string("$.") + std::string(key) + " of " + cfg_path.string());
    };
    if (!template_bos) special("bos_token", v.bos);  // the post-processor's BOS is the one added
    if (!template_eos) {
      special("eos_token", v.eos);
    } else {  // the template's EOS is appended; the configured one still ends generation
      std::optional<token_id> eos;
      special("eos_token", eos);
      if (eos) v.eog_extra.push_back(*eos);
    }
    special("unk_token", v.unk);
    special("pad_token", v.pad);
    if (const auto* ct = rc.member(cfg, "chat_template")) {
      if (ct->is_string()) {
        v.chat_template = ct->get<std::string>();
      } else if (ct->is_array()) {  // [{"name": "default", "template": ...}, ...]
        for (const auto& e : *ct)
          if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string())
            v.chat_template = e["template"].get<std::string>();
      } else {
        rc.bad("$.chat_template", "must be a string or a list of {name, template}");
      }
    }
  }
  if (const auto jinja = dir / "chat_template.jinja"; std::filesystem::is_regular_file(jinja)) {
    std::ifstream in(jinja, std::ios::binary);
    v.chat_template.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  if (const auto gen_path = dir / "generation_config.json"; std::filesystem::is_regular_file(gen_path)) {
    const nlohmann::json gen = detail::read_json_file(gen_path);
    const detail::HfReader rg(gen_path.string());
    if (const auto* e = rg.member(gen, "eos_token_id")) {
      const auto add = [&](const nlohmann::json& x) {
        if (!x.is_number_integer()) rg.bad("$.eos_token_id", "must be an integer or a list of integers");
        const auto id = x.get<std::int64_t>();
        if (id < 0 || static_cast<std::size_t>(id) >= v.tokens.size())
          rg.bad("$.eos_token_id", id, " is outside the vocabulary [0, ", v.tokens.size(), ")");
        v.eog_extra.push_back(static_cast<token_id>(id));
      };
      if (e->is_array()) for (const auto& x : *e) add(x);
      else add(*e);
    }
  }
  v.validate("'" + tj.string() + "'");
  return v;
}

}  // namespace precis::text
