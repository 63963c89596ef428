// compile_fail 14a — dtype-bugs §3 entry 14, first misuse: Attention<FlashAttn, f32>.
// Class C10 (E30 / QwenLM/Qwen3#406: "RuntimeError: FlashAttention only support fp16 and bf16
// data type" because the default load was float32; E16 kernels with their own dtype
// contracts). A backend tag declares the activation dtypes its kernel accepts
// (attention_backend_accepts_activation, nn/attention.hpp); flash_bf16 accepts bf16 only.
// expect-error: (satisfaction of|because|does not satisfy) 'attention_backend_accepts_activation[<']
#include <precis/nn/attention.hpp>  // precis::Attention, attention_backend

using namespace precis;

index_t cf_14a(const AttentionConfig& cfg);
index_t cf_14a(const AttentionConfig& cfg) {
#ifdef PRECIS_SHOULD_FAIL
  const Attention<attention_backend::flash_bf16, f32> attn(cfg);
#else
  const Attention<attention_backend::reference, f32> attn(cfg);  // a backend that takes f32
#endif
  return attn.config().n_heads;
}
