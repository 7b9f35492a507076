"""A fuzz harness of pydarknet_loss's public API (issue 11).

``cases.py`` builds each case from (seed, number); ``runner.py`` runs them in
forked children with a time limit.  ``tests/test_api_fuzz.py`` runs a bounded
number of cases as part of the test suite; the long run is one command:

    cd tests && python -m fuzz --cases 100000
"""
