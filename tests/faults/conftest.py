"""The fault-injection matrix: each service behind tests/support/faultproxy.py.

Fixtures of one service live in that service's test file, so the files stay
independent (the git remote's: tests/faults/test_git_remote_faults.py).
"""
