// 02_generate — precis used directly: load a model, tokenize a chat prompt, generate, stream.
//
//   02_generate [MODEL.gguf|HF_DIR] ["question"]   (default: SmolLM2-135M-Instruct from the cache)
#include <cstdio>      // std::fprintf
#include <exception>   // std::exception
#include <filesystem>  // std::filesystem::exists
#include <iostream>    // std::cout
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <vector>       // std::vector

#include <precis/generate/chat_format.hpp>    // format_chat, detect_chat_format
#include <precis/generate/default_model.hpp>  // default_model_path
#include <precis/generate/generator.hpp>      // Generator
#include <precis/generate/loading.hpp>        // tokenizer_for
#include <precis/runtime/load_model.hpp>       // load_model

using namespace precis;

int main(int argc, char** argv) try {
  const std::filesystem::path path = argc > 1 ? argv[1] : generate::default_model_path();
  const std::string question = argc > 2 ? argv[2] : "What is the capital of France?";
  if (!std::filesystem::exists(path)) {
    std::fprintf(stderr, "02_generate: no model at %s; fetch it with: bash scripts/fetch_model.sh\n", path.c_str());
    return 1;
  }

  // 1. Load: the architecture comes from the file; f32 activations and KV cache, 512 positions.
  models::LoadOptions load;
  load.max_context = 512;
  const auto lm = models::load_model(path, models::precision::f32, load);
  const text::Tokenizer tok = generate::tokenizer_for(path);  // GGUF metadata or tokenizer.json

  // 2. The prompt in the model's own chat format (ChatML for SmolLM2), then its token ids.
  const auto format = generate::detect_chat_format(tok.chat_template(), path.string());
  generate::ChatOptions chat;
  chat.default_system = generate::chatml_template_default_system(tok.chat_template());
  // The template's markup becomes control tokens; the question stays text (MarkedText).
  const text::MarkedText prompt = generate::format_chat(format, {{"user", question}}, chat);
  const auto ids = tok.encode(prompt, {.add_bos = true});
  std::cout << "prompt: " << ids.size() << " tokens\n" << question << "\n> ";

  // 3. Generate greedily, streaming each piece of text as soon as it is complete UTF-8.
  generate::Generator gen(*lm, tok);
  generate::GenerateOptions opt;
  opt.max_new_tokens = 64;
  opt.sampling.temperature = 0;
  const std::vector<std::vector<text::token_id>> prompts{ids};  // a batch of one
  const auto batch = gen.generate_batch_tokens(prompts, opt, [](std::size_t, std::string_view piece) {
    std::cout << piece << std::flush;
  });
  const generate::GenerationResult& r = batch.results[0];
  std::cout << "\n(" << r.tokens.size() << " tokens, stopped by " << generate::to_string(r.reason) << ", "
            << batch.stats.generated_tokens_per_second() << " tokens/s)\n";
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "02_generate: %s\n", e.what());
  return 1;
}
