// precis/precis.hpp — umbrella header for the core (tensors, dtypes, casts, policies).
#pragma once

#include <precis/core/cast.hpp>              // cast<To>, to_float<To>, round_to<To>
#include <precis/core/device.hpp>            // cpu, cuda
#include <precis/core/dtype.hpp>             // dtype tags, dtype_traits, concepts
#include <precis/core/error.hpp>             // precis::error hierarchy
#include <precis/core/precision_policy.hpp>  // precision_policy, PrecisionPolicy
#include <precis/core/tensor.hpp>            // Tensor
#include <precis/core/tensor_view.hpp>       // TensorView
