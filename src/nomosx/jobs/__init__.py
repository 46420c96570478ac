"""Briefs as background jobs, behind one interface (``base.JobQueue``).

- ``inprocess``: the jobs run as tasks of the API process (no Redis: the embedded mode);
- ``redis_queue``: the jobs wait in Redis and ``nomosx worker`` processes (``worker``) run
  them, on any number of machines; its state changes are the Lua scripts of ``scripts``,
  its keys are listed in ``keys``, its events are a Redis stream per job (``events``);
- ``runner``: what a job does (the pipeline, safe to run again for the same brief);
- ``retry``: which failures are tried again, and when;
- ``factory``: the queue the settings ask for.
"""
