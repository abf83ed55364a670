"""The benchmarks (see bench/README.md): ``python3 -m bench.extract_overhead`` and ``python3 -m bench.run``.

The two scripts hold the command lines; the modules beside them do the work by concern (``raw``,
``generate``, ``overhead``, ``cold``, ``deploy``, ``pipeline``, ``report``, ``common``) and import each
other as ``bench.*``. Run as scripts (``python3 bench/run.py``), the scripts put the repository root
first on ``sys.path`` instead of their own folder.
"""
