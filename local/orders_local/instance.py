"""One Lambda instance of one function, as a process of its own: ``python -m orders_local.instance``.

Its init phase imports the function's handler module (``<function>.handler``, as deployed),
composes the service from the environment and creates its DynamoDB client; then it handles one
invocation at a time, for as long as it lives, keeping what it caches warm between them. The main
process (orders_local.instances) sends ``(event, context)`` and gets back ``("returned", result)``
or ``("raised", "<type>: <message>")``, for which API Gateway answers 500.
"""

from __future__ import annotations

import importlib
import logging
import pickle
import sys
from collections.abc import Sequence

from orders_local.helper_processes import READY, connect_to_main, send_or_exit

logger = logging.getLogger("orders_local.instance")

RETURNED = "returned"
RAISED = "raised"


def main(argv: Sequence[str]) -> int:
    connection, (function,) = connect_to_main(argv)
    handler = importlib.import_module(f"{function}.handler").lambda_handler
    from orders_core import composition

    root = composition.Root(composition.Settings.from_environ())
    composition.use(root)
    # boto3's import and client are most of a cold start; Lambda's init phase pays them where a
    # function creates its clients at import time. Here the first request would, and on a busy
    # local run that is the request that most needs an instance.
    _ = root.dynamodb
    send_or_exit(connection, READY)
    while True:
        try:
            event, context = connection.recv()
        except (EOFError, OSError):
            return 0  # the main process closed the line: stopping, or gone
        try:
            reply = (RETURNED, handler(event, context))
        except Exception as exc:  # as Lambda's runtime: any exception is the invocation's error
            logger.exception("%s raised", function)
            reply = (RAISED, f"{type(exc).__name__}: {exc}")
        try:
            send_or_exit(connection, reply)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            # Lambda's runtime fails an invocation whose result it cannot serialize.
            logger.error("%s returned a result that cannot be serialized: %s", function, exc)
            send_or_exit(connection, (RAISED, f"result cannot be serialized: {exc}"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
