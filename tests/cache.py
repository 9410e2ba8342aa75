"""A Redis cache that one test process can clear without touching another's keys.

pytest-xdist runs the fast tier in several processes, each with its own test database
but, through ``REDIS_URL``, one Redis database. Django's ``RedisCache.clear()`` flushes
the whole Redis database, and the dashboard's cached summaries describe one process's
database: so each process gets its own key prefix, and ``clear()`` removes only its keys.
"""

from workflows.cache import ClientKeepingRedisCache


class ProcessRedisCache(ClientKeepingRedisCache):
    def clear(self) -> bool:
        client = self._cache.get_client(write=True)
        keys = list(client.scan_iter(match=f"{self.key_prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start:start + 1000])
        return True
