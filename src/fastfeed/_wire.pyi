# The wire reader is C-level only (cimport fastfeed._wire); it exposes nothing to Python.
