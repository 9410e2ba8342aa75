"""The Redis broker's transport, with its publishing client built once per channel.

kombu's Redis channel builds a new ``redis.Redis`` client (over the channel's connection
pool) for every message it publishes; redis-py fills a fresh table of about 170 reply
parsers in each one, about a fifth of a task's publish here (the outbox's nudge after
a request's commit). A client holds no connection of its own (each command
takes one from the pool, as before), so one per channel serves every publish.
"""

from contextlib import contextmanager

from kombu.transport import redis


class Channel(redis.Channel):
    _publishing_client = None

    @contextmanager
    def conn_or_acquire(self, client=None):
        if client:
            yield client
            return
        # A channel that closed and reopened has a new pool: a client for it then.
        if (self._publishing_client is None
                or self._publishing_client.connection_pool is not self.pool):
            self._publishing_client = self._create_client()
        yield self._publishing_client


class Transport(redis.Transport):
    Channel = Channel
