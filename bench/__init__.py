"""The benchmarks (see bench/README.md): ``python3 -m bench.extract_overhead`` and ``python3 -m bench.run``.

A package so that ``run`` imports ``extract_overhead`` without touching ``sys.path``; both modules
still run as scripts (``python3 bench/run.py``), where the script's own folder is on the path.
"""
