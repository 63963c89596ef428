// tests/static/static_ops.cpp — compile-time facts about the op-level dtype rules (building this
// file is the test). dtype-bugs §3 "must not compile" entries 1, 2, 3, 12, 15 and class C1/C4/C6/C12.
#include "can.hpp"  // precis::static_checks::can_*

namespace precis::static_checks {

// Binary ops: one dtype, one rank, no broadcasting (C1, C4; E10, E27).
static_assert(can_add<Tensor<bf16, 2>, Tensor<bf16, 2>>);
static_assert(can_add<Tensor<bf16, 2>, TensorView<const bf16, 2>>);
static_assert(!can_add<Tensor<f16, 2>, Tensor<bf16, 2>>);
static_assert(!can_add<Tensor<bf16, 2>, Tensor<f32, 2>>);
static_assert(!can_add<Tensor<f32, 2>, Tensor<f32, 3>>);
static_assert(!can_add<Tensor<i32, 1>, Tensor<i32, 1>>);  // integer tensors have no arithmetic here
static_assert(can_mul<Tensor<f32, 2>, Tensor<f32, 2>>);
static_assert(can_mul<Tensor<bf16, 2>, Scalar<bf16>>);
static_assert(!can_mul<Tensor<bf16, 2>, Scalar<f32>>);
static_assert(!can_mul<Tensor<f16, 1>, Scalar<bf16>>);
static_assert(!can_mul<Tensor<bf16, 2>, float>);  // a bare literal is not a typed scalar

// matmul: one operand dtype (E1, E2, E24); output = operand dtype or declared f32 (E18, E19);
// the bias has the output dtype.
static_assert(can_matmul<Tensor<bf16, 2>, Tensor<bf16, 2>>);
static_assert(!can_matmul<Tensor<bf16, 2>, Tensor<f32, 2>>);
static_assert(!can_matmul<Tensor<f32, 2>, Tensor<f16, 2>>);
static_assert(!can_matmul<Tensor<bf16, 3>, Tensor<bf16, 2>>);
static_assert(can_matmul_out<f32, Tensor<bf16, 2>, Tensor<bf16, 2>>);
static_assert(!can_matmul_out<f16, Tensor<bf16, 2>, Tensor<bf16, 2>>);
static_assert(!can_matmul_out<f64, Tensor<f32, 2>, Tensor<f32, 2>>);
static_assert(can_matmul_bias<f32, Tensor<bf16, 2>, Tensor<bf16, 2>, Tensor<f32, 1>>);
static_assert(!can_matmul_bias<f32, Tensor<bf16, 2>, Tensor<bf16, 2>, Tensor<bf16, 1>>);
static_assert(!can_matmul_bias<operand_dtype, Tensor<bf16, 2>, Tensor<bf16, 2>, Tensor<f32, 1>>);

// Conversions name their target; integer ↔ float crossings have their own names (E13, E17).
static_assert(can_cast<bf16, Tensor<f32, 2>>);
static_assert(!can_cast<bf16, Tensor<i64, 1>>);  // positions.to(bf16)
static_assert(!can_cast<i64, Tensor<f32, 1>>);   // x.to(positions.dtype): "cast like that tensor"
static_assert(can_to_float<f32, Tensor<i64, 1>>);
static_assert(!can_to_float<bf16, Tensor<i64, 1>>);
static_assert(can_round_to<i64, Tensor<f32, 1>>);

// No f64 on the device (E15, seed bug 2).
static_assert(can_name_tensor<f64, 2, host>);
static_assert(can_name_tensor<f32, 2, cuda>);
static_assert(!can_name_tensor<f64, 2, cuda>);
static_assert(!can_name_tensor<q4_0, 2>);  // block formats are not element dtypes

}  // namespace precis::static_checks
