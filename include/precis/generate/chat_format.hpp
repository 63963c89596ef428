// precis/generate/chat_format.hpp — turning a conversation into the prompt text a chat model was
// trained on. Three named formats, chosen from the model's own chat template (GGUF
// `tokenizer.chat_template` / HF `tokenizer_config.json`) or by name:
//
//   ChatML   <|im_start|>{role}\n{content}<|im_end|>\n ... <|im_start|>assistant\n
//            (SmolLM2, Qwen2/2.5/3). SmolLM2's template inserts a default system turn when the
//            conversation does not start with one ("You are a helpful AI assistant named SmolLM,
//            trained by Hugging Face" — the template in SmolLM2-135M-Instruct's GGUF); Qwen3's
//            template with enable_thinking=false appends an empty "<think>\n\n</think>\n\n" to
//            the generation prompt, which `ChatOptions::thinking = false` reproduces.
//   Harmony  <|start|>{role}<|message|>{content}<|end|> ... <|start|>assistant  (gpt-oss; the
//            minimal form of OpenAI's harmony format: a system turn naming the reasoning effort,
//            then the turns; the model answers on channels and ends with <|return|>).
//   Plain    the concatenated contents, no markup (base models, `--chat` off).
//
// Precis does not run the Jinja templates themselves (no Jinja engine in C++ here): it detects
// which of the known formats a template is, by markers that each format's template must
// contain, and refuses unknown templates with a message naming what it looked for — rather than
// silently prompting a model in a format it was not trained on.
#pragma once

#include <optional>     // std::optional
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <vector>       // std::vector

#include <precis/core/error.hpp>      // precis::config_error
#include <precis/text/tokenizer.hpp>  // precis::text::MarkedText

namespace precis::generate {

/// One turn of a conversation: role "system", "user" or "assistant" (ChatML also allows others).
struct Message {
  std::string role;
  std::string content;
};

enum class ChatFormat { plain, chatml, harmony };

[[nodiscard]] constexpr std::string_view chat_format_name(ChatFormat f) noexcept {
  switch (f) {
    case ChatFormat::plain: return "plain";
    case ChatFormat::chatml: return "chatml";
    case ChatFormat::harmony: return "harmony";
  }
  return "?";
}

struct ChatOptions {
  /// System prompt used when the conversation has none; nullopt: the format's own default
  /// (SmolLM2's template supplies one, Qwen's and gpt-oss's do not need one).
  std::optional<std::string> default_system;
  /// Qwen3-style thinking: false appends the empty think block to the generation prompt.
  bool thinking = true;
  /// gpt-oss reasoning effort written in the harmony system turn: "low", "medium" or "high".
  std::string reasoning_effort = "low";
};

namespace detail {
[[nodiscard]] inline bool contains(std::string_view hay, std::string_view needle) noexcept {
  return hay.find(needle) != std::string_view::npos;
}
}  // namespace detail

/// The format a chat template string is written for. An empty template (a base model) is
/// `plain`; a template with none of the known markers is a config_error naming `where`.
[[nodiscard]] inline ChatFormat detect_chat_format(std::string_view chat_template, std::string_view where) {
  if (chat_template.empty()) return ChatFormat::plain;
  if (detail::contains(chat_template, "<|im_start|>") && detail::contains(chat_template, "<|im_end|>"))
    return ChatFormat::chatml;
  if (detail::contains(chat_template, "<|start|>") && detail::contains(chat_template, "<|message|>"))
    return ChatFormat::harmony;
  throw config_error(std::string(where) +
                     ": the chat template is not one precis knows (looked for ChatML's <|im_start|>/<|im_end|> "
                     "and harmony's <|start|>/<|message|>); use plain prompts (no --chat)");
}

/// The default system turn a ChatML template inserts when the conversation has none, read from
/// the template text itself (SmolLM2: "You are a helpful AI assistant named SmolLM, ..."), or
/// nullopt when the template inserts none (Qwen).
[[nodiscard]] inline std::optional<std::string> chatml_template_default_system(std::string_view chat_template) {
  constexpr std::string_view open = "<|im_start|>system\n";
  const auto at = chat_template.find(open);
  if (at == std::string_view::npos) return std::nullopt;
  const auto begin = at + open.size();
  const auto end = chat_template.find("<|im_end|>", begin);
  if (end == std::string_view::npos) return std::nullopt;
  const std::string_view text = chat_template.substr(begin, end - begin);
  // A literal string in the template, not a Jinja expression splicing in a variable.
  if (detail::contains(text, "{{") || detail::contains(text, "{%") || detail::contains(text, "'")) return std::nullopt;
  return std::string(text);
}

/// The prompt for `messages` in `format`, ending where the assistant's answer begins, as a
/// MarkedText: only what the template writes (<|im_start|>, <|im_end|>, <|start|>, …) may become
/// control tokens; every message's role and content stays text when tokenized with
/// Tokenizer::encode(MarkedText), so a user who types "<|im_end|><|im_start|>system" forges no
/// turn (robustness sweep; tests/unit/generate/test_generate.cpp). `.text` is the string HF's
/// apply_chat_template renders.
[[nodiscard]] inline text::MarkedText format_chat(ChatFormat format, const std::vector<Message>& messages,
                                                  const ChatOptions& opt = {}) {
  text::MarkedText out;
  const bool has_system = !messages.empty() && messages.front().role == "system";
  switch (format) {
    case ChatFormat::plain:
      for (const Message& m : messages) out.content(m.content);
      return out;
    case ChatFormat::chatml:
      if (!has_system && opt.default_system)
        out.markup("<|im_start|>system\n").content(*opt.default_system).markup("<|im_end|>\n");
      for (const Message& m : messages)
        out.markup("<|im_start|>").content(m.role).markup("\n").content(m.content).markup("<|im_end|>\n");
      out.markup("<|im_start|>assistant\n");
      if (!opt.thinking) out.markup("<think>\n\n</think>\n\n");
      return out;
    case ChatFormat::harmony: {
      // OpenAI harmony (gpt-oss model card): the system turn carries the reasoning effort; a
      // user-supplied system message becomes the developer turn's instructions.
      out.markup("<|start|>system<|message|>Reasoning: ")
          .content(opt.reasoning_effort)
          .markup("\n\n# Valid channels: analysis, final. Channel must be included for every message.<|end|>");
      for (const Message& m : messages) {
        const bool system = m.role == "system";
        out.markup("<|start|>").content(system ? "developer" : m.role).markup("<|message|>");
        if (system) out.markup("# Instructions\n\n");
        out.content(m.content).markup("<|end|>");
      }
      out.markup("<|start|>assistant");
      return out;
    }
  }
  return out;
}

}  // namespace precis::generate
