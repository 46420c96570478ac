"""Every Redis key of a job queue, in one place.

All keys of a queue share the hash tag ``{queue name}``, so that the queue's scripts,
which touch several of them at once, also work on a Redis Cluster (one slot per queue).

=====================  ======  ==========================================================
key                    type    what it holds
=====================  ======  ==========================================================
``{q}:queue``          zset    jobs waiting for a worker; score: ms when it may start
``{q}:running``        zset    jobs a worker holds; score: ms when its lease runs out
``{q}:owners``         hash    job -> the token of the worker holding its lease
``{q}:workers``        zset    worker name -> ms of its last heartbeat
``{q}:stats``          hash    jobs finished since the queue exists, by final status
``{q}:job:<id>``       hash    the job: question, owner, status, attempts, error, ...
``{q}:events:<id>``    stream  the job's events, ids ``0-1``, ``0-2``, ...
=====================  ======  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QueueKeys:
    name: str

    @property
    def prefix(self) -> str:
        return "{" + self.name + "}:"

    @property
    def queue(self) -> str:
        return self.prefix + "queue"

    @property
    def running(self) -> str:
        return self.prefix + "running"

    @property
    def owners(self) -> str:
        return self.prefix + "owners"

    @property
    def workers(self) -> str:
        return self.prefix + "workers"

    @property
    def stats(self) -> str:
        return self.prefix + "stats"

    def job(self, brief_id: str) -> str:
        return f"{self.prefix}job:{brief_id}"

    def events(self, brief_id: str) -> str:
        return f"{self.prefix}events:{brief_id}"
