"""Real-time humidity analytics for medical imaging devices.

Layers, each importing only those before it: ``core`` (pure), ``plumbing``
(record batches, commits, Kafka admin), ``application`` (the faust.App),
``declare`` and the top-level ``tables`` (topics, tables, metrics), ``flow``
(agents and timers), and the edge: ``web``, ``cli``, ``service`` (which
composes them all). See :mod:`humidity.service`.
"""
