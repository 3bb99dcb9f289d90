tp_integration_test(server test_server.py)
