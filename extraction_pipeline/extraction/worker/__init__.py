"""The isolated warm workers, by concern; ``extraction.workers`` is the public face (import from there).

- ``boundary``: what crosses between parent and worker (JSON messages, the scrubbed environment);
- ``faults``: fault injection for tests;
- ``diagnosis``: what the kernel tells of a worker (memory, out-of-memory kills, how it died);
- ``child``: the program a worker runs;
- ``process``: the parent's handle on one worker process;
- ``pool``: the pool of workers; ``shared``: a process-wide pool per set of limits.

Modules the worker imports (``child`` and what it needs) stay light and import nothing of the pool.
"""
