"""svchunt.watch: real-time detection on event streams (`svchunt watch`).

Inputs (file follower, stdin, HTTP, syslog TCP, Redis list) put `Chunk`s of raw JSON lines into one bounded
queue; the micro-batcher drains it by size or time; the pipeline runs the same rules and correlations as
`hunt`, writes new alerts to the sinks, then commits input positions, correlator state and emitted alert ids
in one SQLite transaction, and only then acknowledges the inputs (Redis trim, HTTP response).
"""
