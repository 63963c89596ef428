// compile_fail 10 — dtype-bugs §3 entry 10: using a quantized weight's dtype as the activation type.
// Class C7/C11 (E26 ROCm vLLM: "use `self.embed_tokens.weight.dtype` to determine the compute
// dtype ... After INT8 quantization, `.weight.dtype` returns torch.int8 instead of
// torch.float16, corrupting downstream tensor creation"). A QuantTensor has no `dtype` and is
// not TensorLike (quant/quant_tensor.hpp), so precis' generic "dtype of this tensor",
// dtype_of<T>, cannot be applied to it. The compute type comes from the model's policy.
// expect-error: (satisfaction of|because|does not satisfy) 'TensorLike[<']
#include <precis/core/precision_policy.hpp>  // precis::bf16_policy
#include <precis/core/tensor.hpp>            // precis::Tensor, dtype_of
#include <precis/quant/quant_tensor.hpp>     // precis::QuantTensor

using namespace precis;

template <class Policy>
index_t cf_10(const QuantTensor<q8_0, 2>& embed_tokens) {
#ifdef PRECIS_SHOULD_FAIL
  using act_t = dtype_of<QuantTensor<q8_0, 2>>;  // "the weight's dtype"
#else
  using act_t = typename Policy::activation;     // the declared compute type
#endif
  const Tensor<act_t, 2> hidden({1, embed_tokens.extent(1)});
  return hidden.numel();
}
template index_t cf_10<bf16_policy>(const QuantTensor<q8_0, 2>&);
