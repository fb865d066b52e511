"""Integration suite: memsafe secrets handed to real third-party libraries.

Each test checks the recommended route for one library call against the
installed package (`pip install '.[integration]'`) and carries a row of the
table in docs/integration.md (see _table.py); a test skips when its package
is missing.  Regenerate the table with:

    python tests/integration/test_table.py --write
"""
