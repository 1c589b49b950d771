"""Shared by every test folder. There are no __init__.py files: pytest puts this folder on
sys.path for this conftest, so `feed_helpers` imports by name everywhere."""
