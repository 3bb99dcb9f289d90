# SPDX-License-Identifier: MIT
# Unit tests: one tp_unit_test() each, linking only the modules under test.
tp_unit_test(test_config unit/test_config.c ${PROJECT_SOURCE_DIR}/src/config.c ${PROJECT_SOURCE_DIR}/src/config_file.c)
target_link_libraries(test_config PRIVATE PkgConfig::LIBCONFIG)
target_compile_definitions(test_config PRIVATE TP_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
