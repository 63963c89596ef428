// src/model_registry.cpp — the one translation unit of precis' own tools and tests that compiles
// models::model_registry(), i.e. every model × precision policy × weight format (~2 min with g++
// -O3 on the 2-core CI machine; every program that calls load_model used to pay it).
// cmake/PrecisModelRegistry.cmake builds it once per flag set (ISA, optimisation level,
// sanitizers) and defines PRECIS_MODELS_COMPILED_SEPARATELY for its users, which makes
// load_model.hpp declare the registry instead of defining it. Not installed: users of the
// headers get the inline definition.
#define PRECIS_MODELS_DEFINE_REGISTRY
#include <precis/runtime/load_model.hpp>
