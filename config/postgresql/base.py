"""Django's PostgreSQL backend, with a persistent connection's health checked without a
round trip when the server has said nothing since its last answer.

With ``CONN_HEALTH_CHECKS`` Django checks a kept connection before each request's first
query by running ``SELECT 1`` through it: a round trip on every request, about a tenth
of a millisecond of CPU waiting and waking (a tenth of a 403's). A server that drops a
connection says so: a restart, ``pg_terminate_backend``, an idle timeout or a pooler
closing it sends an error, then the end of the stream, and either makes the socket
readable. An idle connection that is well has nothing to read: so the socket is polled
(no waiting), and only when it has something to say, or psycopg already knows the
connection broken, is ``SELECT 1`` run as Django runs it, closing the connection if it
fails. What a poll cannot see, a peer gone without a word, ``SELECT 1`` would not have
seen either before TCP gave up; nor a connection ended in the instant before the poll,
whose word is still on its way (``SELECT 1`` would have waited for it): either way the
request's query fails (503, to retry), and Django checks the connection again at the
next request, as it does after any error.
"""

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self):
        if (self.connection is not None and self.health_check_enabled
                and not self.health_check_done and not self.pool
                and self._server_said_nothing()):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def _server_said_nothing(self) -> bool:
        if self.connection.closed or self.connection.broken:
            return False
        socket = self.connection.fileno()
        readable, _, failed = select.select([socket], [], [socket], 0)
        return not readable and not failed
