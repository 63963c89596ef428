// precis/nn/embedding.hpp — Embedding<D> (token lookup), Tied<Embedding<D>> (embedding shared
// with the LM head), and untie<W>: the one way to give the head its own weights.
//
// Lookup takes integer token ids only (token_ids_are_integer; dtype-bugs C12): an id is an index,
// never a float that happens to be integral. An id outside [0, vocab) throws range_error naming
// the id, its position and the vocabulary size — a wrong tokenizer/vocab pairing is a loud error.
//
// Tied weights (class C11; prime-rl#2438 "casting lm_head.weight in place would also cast
// embed_tokens", ROCm vLLM#1016 / E26 int8 head quantisation hitting the tied embeddings):
// a tied embedding is one object of one dtype, usable as the LM head only with its own D
// (`forward(x)` requires x of dtype D; its *output* may be declared f32 —
// `forward<f32>(x)` is the out-dtype GEMM prime-rl#2441 switched to). Using it as a head of
// another dtype requires `untie<W>(tied)`, which copies (and converts, if W ≠ D) the weight into
// a separate Linear<W>; the embedding is untouched. `Linear<f32> head(tied)` does not compile.
#pragma once

#include <concepts>  // std::same_as

#include <precis/core/cast.hpp>        // precis::cast
#include <precis/core/dtype.hpp>       // precis::ActivationDtype, IndexDtype
#include <precis/core/error.hpp>       // precis::range_error, PRECIS_CHECK
#include <precis/core/tensor.hpp>      // precis::Tensor
#include <precis/nn/linear.hpp>        // precis::Linear, Tied (declaration)
#include <precis/ops/host_tensor.hpp>  // precis::HostTensorOfRank, materialize
#include <precis/ops/matmul.hpp>       // precis::matmul, operand_dtype

namespace precis {

/// Token ids are integers (i32 or i64).
template <class T>
concept token_ids_are_integer = IndexDtype<T>;

template <ActivationDtype D>
class Embedding {
 public:
  using dtype = D;

  /// weight [vocab, hidden] (checkpoint layout: `embed_tokens.weight`, GGUF `token_embd` reversed).
  explicit Embedding(Tensor<D, 2> weight) : weight_(std::move(weight)) {}

  [[nodiscard]] index_t vocab_size() const noexcept { return weight_.extent(0); }
  [[nodiscard]] index_t hidden_size() const noexcept { return weight_.extent(1); }
  [[nodiscard]] TensorView<const D, 2> weight() const noexcept { return weight_.cview(); }  // [vocab, hidden]

  /// ids [T] → rows [T, hidden] (copies; values bit-identical to the table).
  template <HostTensorOfRank<1> Ids>
    requires token_ids_are_integer<dtype_of<Ids>>
  [[nodiscard]] Tensor<D, 2> lookup(const Ids& ids) const {
    const const_view_t<Ids> iv = ids;
    const index_t n = iv.extent(0), hidden = hidden_size();
    Tensor<D, 2> out({n, hidden});  // [T, hidden]
    for (index_t t = 0; t < n; ++t) {
      const auto id = static_cast<index_t>(iv(t));
      PRECIS_CHECK(id >= 0 && id < vocab_size(), range_error, "[Embedding::lookup] token id ", id, " at position ", t,
                   " outside the vocabulary [0, ", vocab_size(), ")");
      for (index_t h = 0; h < hidden; ++h) out(t, h) = weight_(id, h);
    }
    return out;
  }

 private:
  Tensor<D, 2> weight_;  // [vocab, hidden]
};

template <class E>
class Tied;

/// An embedding whose table is also the LM head (SmolLM2: no lm_head tensor, model-semantics §1d).
template <ActivationDtype D>
class Tied<Embedding<D>> {
 public:
  using dtype = D;

  explicit Tied(Embedding<D> embedding) : embedding_(std::move(embedding)) {}

  [[nodiscard]] const Embedding<D>& embedding() const noexcept { return embedding_; }

  /// Input side: the embedding lookup.
  template <HostTensorOfRank<1> Ids>
    requires token_ids_are_integer<dtype_of<Ids>>
  [[nodiscard]] Tensor<D, 2> lookup(const Ids& ids) const {
    return embedding_.lookup(ids);
  }

  /// Output side: logits = x [T, hidden] · tableᵀ → [T, vocab]. x must have the embedding's
  /// dtype D; the logits are D, or f32 when declared (`forward<f32>(x)`).
  template <class Out = operand_dtype, HostTensorOfRank<2> X>
    requires same_dtype_no_implicit_cast<dtype_of<X>, D> && matmul_out_is_operand_or_f32<resolve_out_t<Out, D>, D>
  [[nodiscard]] Tensor<resolve_out_t<Out, D>, 2> forward(const X& x) const {
    return matmul<Out>(x, embedding_.weight());
  }

 private:
  Embedding<D> embedding_;
};

/// The named conversion from tied weights to a separate head: copies the table into a new
/// Linear<W> (converting with cast<W> when W ≠ D). The tied embedding is unchanged.
template <ActivationDtype W, ActivationDtype D>
[[nodiscard]] Linear<W> untie(const Tied<Embedding<D>>& tied) {
  if constexpr (std::same_as<W, D>) return Linear<W>(materialize(tied.embedding().weight()));
  else return Linear<W>(cast<W>(tied.embedding().weight()));
}

}  // namespace precis
