tp_integration_test(server test_server.py)
tp_integration_test(systemd test_systemd.py)
tp_integration_test(socket_activation test_socket_activation.py)
tp_integration_test(tpclient test_tpclient.py)
tp_integration_test(units test_units.py)
tp_integration_test(study_smoke test_study_smoke.py)
tp_integration_test(study_plots test_study_plots.py)
# study_plots checks the plots study_smoke's run left in TP_STUDY_OUT.
set_property(TEST integration.study_smoke integration.study_plots APPEND PROPERTY
  ENVIRONMENT "TP_STUDY_OUT=${PROJECT_BINARY_DIR}/study-smoke")
set_tests_properties(integration.study_smoke PROPERTIES FIXTURES_SETUP study)
set_tests_properties(integration.study_plots PROPERTIES FIXTURES_REQUIRED study)
tp_integration_test(adversarial test_adversarial.py)
tp_integration_test(many_connections test_many_connections.py)
