tp_integration_test(server test_server.py)
tp_integration_test(systemd test_systemd.py)
tp_integration_test(tpclient test_tpclient.py)
tp_integration_test(units test_units.py)
