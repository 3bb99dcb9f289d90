# SPDX-License-Identifier: MIT
# Unit tests: test_<module>.c tests src/<layer>/<module>.c and links that
# layer's library (a static library: only the objects a test uses are linked).
tp_unit_test(test_config tp_server unit/test_config.c)
target_compile_definitions(test_config PRIVATE TP_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
tp_unit_test(test_hist tp_client unit/test_hist.c)
tp_unit_test(test_verify tp_client unit/test_verify.c)
tp_unit_test(test_client_opts tp_client unit/test_client_opts.c)
tp_unit_test(test_proto tp_common unit/test_proto.c)
tp_unit_test(test_framer tp_common unit/test_framer.c)
tp_unit_test(test_spin tp_workq unit/test_spin.c)
tp_unit_test(test_queue tp_workq unit/test_queue.c)
tp_unit_test(test_fairq tp_workq unit/test_fairq.c)
tp_unit_test(test_pool tp_workq unit/test_pool.c)
tp_unit_test(test_config_docs tp_server unit/test_config_docs.c)
target_compile_definitions(test_config_docs PRIVATE TP_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
tp_unit_test(test_dispatch tp_server unit/test_dispatch.c)
tp_unit_test(test_conn tp_server unit/test_conn.c)
tp_unit_test(test_addrtab tp_server unit/test_addrtab.c)
