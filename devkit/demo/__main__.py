"""`python -m devkit.demo` (make run)."""

from devkit.demo.run import main

main()
