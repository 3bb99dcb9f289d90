tp_integration_test(server test_server.py)
tp_integration_test(systemd test_systemd.py)
tp_integration_test(tpclient test_tpclient.py)
tp_integration_test(units test_units.py)
tp_integration_test(study_smoke test_study_smoke.py)
tp_integration_test(adversarial test_adversarial.py)
tp_integration_test(metrics test_metrics.py)
tp_integration_test(examples test_examples.py)
tp_integration_test(prometheus test_prometheus.py)
# Both exit 77 without promtool or prometheus.  The real Prometheus is
# heavy (a server and a TSDB): sanitizer stages leave out the label heavy.
set_tests_properties(integration.examples integration.prometheus PROPERTIES SKIP_RETURN_CODE 77)
set_tests_properties(integration.prometheus PROPERTIES LABELS "integration;heavy")
