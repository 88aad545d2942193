"""The chaos suite: the platform's parts killed, paused, failed over and cut under load.

``python -m bench.chaos`` runs the scenarios (``scenarios.py`` names them
with their full and CI sizes); ``tests/integration/test_chaos.py`` runs them
small. Reading order: ``outcome`` (figures, invariants, what REST may
answer), ``stack`` (settings, a throw-away database, REST in process),
then one module per kind of failure: ``backends`` (MariaDB primary, Redis
master, Kafka broker), ``network`` (a delaying, cutting proxy), ``workers``
(kills between processing and commit), ``gateways`` (a node SIGKILLed under
races), ``drain`` (SIGTERM under chat), ``chat_failover`` (the Redis master
killed under chat on two gateways), ``slow`` (a consumer that stops
reading). What each checks: ``docs/operations.md``, "Failure drills".
"""
