"""Redis Streams messaging for deployments split over several processes.

Used when ``REDIS_URL`` is set (DESIGN.md §3); a single process uses the
in-process bus and signal queue of ``trademk.engine`` instead.

- ``redis_signals.RedisSignalQueue``: order requests (signals) on a stream with a
  consumer group. Several execution workers share it; each signal is acknowledged
  only after its handler returned (the order is durable), signals held by a dead
  worker are claimed by a live one, and a signal that keeps failing goes to the
  dead-letter stream ``<stream>:dead``. Delivery is at-least-once: handlers
  deduplicate by ``client_order_id`` (the OMS does).
- ``redis_bus.RedisEventBus``: the ``MessageBus`` of a process, relaying every
  event published in any process to the local subscribers of every other
  process (fan-out, one stream per topic, no consumer group).
- ``codec``: JSON payload encoding (Decimals as exact strings).
- ``streams``: stream-id arithmetic and consumer naming shared by both.
- ``stream_upkeep``: trimming that never drops unacknowledged signals, forgetting
  departed consumers, and the stream figures of ``status()``.
"""
