# tests/unit/models/moe.cmake — the MoE models' unit tests (models/moe_weights.hpp,
# models/qwen3_moe.hpp, models/qwen3_omni_thinker.hpp, models/gpt_oss.hpp), included from
# tests/unit/models/CMakeLists.txt.
if(NOT TARGET precis::cpu)
  message(STATUS "precis: MoE model tests skipped (precis::cpu needs xsimd, TBB and Eigen3)")
  return()
endif()

precis_add_test(test_moe_weights ${CMAKE_CURRENT_LIST_DIR}/test_moe_weights.cpp LIBS precis::io precis::cpu)
precis_add_test(test_moe_models_qwen ${CMAKE_CURRENT_LIST_DIR}/test_moe_models_qwen.cpp LIBS precis::io precis::cpu)
precis_add_test(test_moe_models_gpt_oss ${CMAKE_CURRENT_LIST_DIR}/test_moe_models_gpt_oss.cpp LIBS precis::io precis::cpu)
precis_add_test(test_expert_selector ${CMAKE_CURRENT_LIST_DIR}/test_expert_selector.cpp LIBS precis::io precis::cpu)
foreach(t test_moe_weights test_moe_models_qwen test_moe_models_gpt_oss test_expert_selector)
  precis_model_test(${t})
endforeach()
precis_link_model_registry(test_moe_models_qwen OPT1)
precis_link_model_registry(test_expert_selector OPT1)
