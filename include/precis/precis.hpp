// precis/precis.hpp — umbrella header for the core: tensors, dtypes, casts, scalars, policies,
// and the block-quantized weight types. Checkpoint I/O (precis/io/*) and the CPU backend
// (precis/backends/cpu/*) are separate components with their own dependencies.
#pragma once

#include <precis/core/cast.hpp>              // cast<To>, to_float<To>, round_to<To>
#include <precis/core/device.hpp>            // cpu, cuda
#include <precis/core/dtype.hpp>             // dtype tags, dtype_traits, concepts
#include <precis/core/error.hpp>             // precis::error hierarchy
#include <precis/core/precision_policy.hpp>  // precision_policy, PrecisionPolicy, roles
#include <precis/core/scalar.hpp>            // Scalar<D>
#include <precis/core/tensor.hpp>            // Tensor
#include <precis/core/tensor_view.hpp>       // TensorView
#include <precis/quant/dequantize.hpp>       // dequantize<To>
#include <precis/quant/quant_tensor.hpp>     // QuantTensor
#include <precis/quant/quant_view.hpp>       // QuantView
#include <precis/quant/quantize.hpp>         // quantize<F>
