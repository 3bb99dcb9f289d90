# SPDX-License-Identifier: MIT
# Unit tests: one tp_unit_test() each, linking only the modules under test.
tp_unit_test(test_config unit/test_config.c ${PROJECT_SOURCE_DIR}/src/config.c ${PROJECT_SOURCE_DIR}/src/config_file.c)
target_link_libraries(test_config PRIVATE PkgConfig::LIBCONFIG)
target_compile_definitions(test_config PRIVATE TP_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
tp_unit_test(test_hist unit/test_hist.c ${PROJECT_SOURCE_DIR}/src/hist.c)
target_link_libraries(test_hist PRIVATE m)
tp_unit_test(test_verify unit/test_verify.c ${PROJECT_SOURCE_DIR}/src/verify.c)
tp_unit_test(test_client_opts unit/test_client_opts.c ${PROJECT_SOURCE_DIR}/src/client_opts.c ${PROJECT_SOURCE_DIR}/src/config.c)
tp_unit_test(test_proto unit/test_proto.c ${PROJECT_SOURCE_DIR}/src/proto.c)
tp_unit_test(test_framer unit/test_framer.c ${PROJECT_SOURCE_DIR}/src/framer.c)
tp_unit_test(test_spin unit/test_spin.c)
tp_unit_test(test_queue unit/test_queue.c ${PROJECT_SOURCE_DIR}/src/queue.c)
tp_unit_test(test_pool unit/test_pool.c ${PROJECT_SOURCE_DIR}/src/pool.c ${PROJECT_SOURCE_DIR}/src/queue.c)
