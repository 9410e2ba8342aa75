"""Django's Redis cache, with one Redis client per connection pool instead of one per call.

Django's ``RedisCacheClient`` builds a new ``redis.Redis`` object around its pool for
every cache call, and building one costs more CPU than the call itself (about half of
a session read). The client holds no state of its own beyond the pool (which is
thread-safe, and starts afresh in a forked process), so one is kept per pool.
"""

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class ClientKeepingRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class ClientKeepingRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ClientKeepingRedisCacheClient
