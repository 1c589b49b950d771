# The schema walk is C-level only (cimport fastfeed._parse); it exposes nothing to Python.
