// tools/llamacpp_greedy.cpp — llama.cpp's own answer for precis' K-quant checks: greedy decoding
// (argmax at every step, first index on ties) and, optionally, the logits of every prompt
// position, computed by libllama from tools/build_llamacpp.sh. Built and run by
// tools/make_kquant_references.py; never part of precis' build (it links llama.cpp).
//
//   llamacpp_greedy MODEL.gguf PROMPT N_PREDICT [LOGITS_OUT.f32]
//
// stdout: one JSON object {"prompt": [ids], "greedy": [ids], "n_vocab": V}. The prompt is
// tokenized by llama.cpp with add_special as the vocabulary says and special tokens parsed.
// LOGITS_OUT gets the logits of every prompt position, [T, V] little-endian f32, row-major.
// One thread, flash attention off, so the numbers do not depend on the machine's core count.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "llama.h"

namespace {
[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "llamacpp_greedy: %s\n", what);
  std::exit(1);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) die("usage: llamacpp_greedy MODEL.gguf PROMPT N_PREDICT [LOGITS_OUT.f32]");
  const std::string prompt = argv[2];
  const int n_predict = std::atoi(argv[3]);
  llama_backend_init();
  llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
  llama_model_params mp = llama_model_default_params();
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (model == nullptr) die("cannot load the model");
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const int n_vocab = llama_vocab_n_tokens(vocab);

  std::vector<llama_token> ids(prompt.size() + 8);
  const int n = llama_tokenize(vocab, prompt.data(), static_cast<int32_t>(prompt.size()), ids.data(),
                               static_cast<int32_t>(ids.size()), true, true);
  if (n < 0) die("tokenize failed");
  ids.resize(static_cast<std::size_t>(n));

  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = static_cast<uint32_t>(n + n_predict + 8);
  cp.n_batch = cp.n_ctx;
  cp.n_ubatch = cp.n_ctx;
  cp.n_threads = 1;
  cp.n_threads_batch = 1;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (ctx == nullptr) die("cannot create a context");

  llama_batch batch = llama_batch_init(n, 0, 1);
  for (int i = 0; i < n; ++i) {
    batch.token[i] = ids[static_cast<std::size_t>(i)];
    batch.pos[i] = i;
    batch.n_seq_id[i] = 1;
    batch.seq_id[i][0] = 0;
    batch.logits[i] = 1;
  }
  batch.n_tokens = n;
  if (llama_decode(ctx, batch) != 0) die("prompt decode failed");
  if (argc > 4) {
    std::FILE* f = std::fopen(argv[4], "wb");
    if (f == nullptr) die("cannot write the logits file");
    for (int i = 0; i < n; ++i) std::fwrite(llama_get_logits_ith(ctx, i), sizeof(float), static_cast<std::size_t>(n_vocab), f);
    std::fclose(f);
  }
  std::vector<llama_token> out;
  const float* logits = llama_get_logits_ith(ctx, n - 1);
  for (int step = 0; step < n_predict; ++step) {
    llama_token best = 0;
    for (llama_token t = 1; t < n_vocab; ++t)
      if (logits[t] > logits[best]) best = t;
    if (llama_vocab_is_eog(vocab, best)) break;
    out.push_back(best);
    if (step + 1 == n_predict) break;
    llama_batch one = llama_batch_get_one(&out.back(), 1);
    if (llama_decode(ctx, one) != 0) die("decode failed");
    logits = llama_get_logits_ith(ctx, -1);
  }
  std::printf("{\"n_vocab\": %d, \"prompt\": [", n_vocab);
  for (int i = 0; i < n; ++i) std::printf("%s%d", i ? ", " : "", ids[static_cast<std::size_t>(i)]);
  std::printf("], \"greedy\": [");
  for (std::size_t i = 0; i < out.size(); ++i) std::printf("%s%d", i ? ", " : "", out[i]);
  std::printf("]}\n");
  llama_batch_free(batch);
  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
